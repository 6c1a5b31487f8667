import type { DeadLetterQueues, ParkedMessage, ParkedSelection } from '../../platform/events/transport.ts';
import { deadLetterNotFound, unknownConsumer } from './errors.ts';

export type DeadLetterService = ReturnType<typeof createDeadLetterService>;

/** The dead-letter queues of every consumer, or of one, as operators handle them. */
export function createDeadLetterService(deps: { queues: DeadLetterQueues; consumers: string[] }) {
  const { queues, consumers } = deps;

  const consumersOf = (consumer: string | undefined) => {
    if (consumer === undefined) return consumers;
    if (!consumers.includes(consumer)) {
      throw unknownConsumer(consumer, consumers);
    }
    return [consumer];
  };

  const list = async (consumer?: string): Promise<ParkedMessage[]> =>
    (await Promise.all(consumersOf(consumer).map((name) => queues.list(name)))).flat();

  const act = async (action: 'replay' | 'purge', selection: ParkedSelection, consumer?: string) => {
    let count = 0;
    for (const name of consumersOf(consumer)) count += await queues[action](name, selection);
    if (count === 0 && 'id' in selection) throw deadLetterNotFound(selection.id);
    return count;
  };

  return {
    consumers,
    list,
    async show(id: string, consumer?: string): Promise<ParkedMessage> {
      const found = (await list(consumer)).find((message) => message.id === id);
      if (!found) throw deadLetterNotFound(id);
      return found;
    },
    replay: (selection: ParkedSelection, consumer?: string) => act('replay', selection, consumer),
    purge: (selection: ParkedSelection, consumer?: string) => act('purge', selection, consumer),
  };
}
