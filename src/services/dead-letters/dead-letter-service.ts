import type { DeadLetterQueues, ParkedMessage, ParkedSelection } from '../../platform/events/transport.ts';
import { DomainError, registerErrorStatuses } from '../../platform/http/errors.ts';

registerErrorStatuses({ DEAD_LETTER_NOT_FOUND: 404, UNKNOWN_CONSUMER: 422 });

export type DeadLetterService = ReturnType<typeof createDeadLetterService>;

/** The dead-letter queues of every consumer, or of one, as operators handle them. */
export function createDeadLetterService(deps: { queues: DeadLetterQueues; consumers: string[] }) {
  const { queues, consumers } = deps;

  const consumersOf = (consumer: string | undefined) => {
    if (consumer === undefined) return consumers;
    if (!consumers.includes(consumer)) {
      throw new DomainError('UNKNOWN_CONSUMER', `Unknown consumer '${consumer}'; consumers: ${consumers.join(', ')}`);
    }
    return [consumer];
  };

  const list = async (consumer?: string): Promise<ParkedMessage[]> =>
    (await Promise.all(consumersOf(consumer).map((name) => queues.list(name)))).flat();

  const act = async (action: 'replay' | 'purge', selection: ParkedSelection, consumer?: string) => {
    let count = 0;
    for (const name of consumersOf(consumer)) count += await queues[action](name, selection);
    if (count === 0 && 'id' in selection) throw notFound(selection.id);
    return count;
  };

  return {
    consumers,
    list,
    async show(id: string, consumer?: string): Promise<ParkedMessage> {
      const found = (await list(consumer)).find((message) => message.id === id);
      if (!found) throw notFound(id);
      return found;
    },
    replay: (selection: ParkedSelection, consumer?: string) => act('replay', selection, consumer),
    purge: (selection: ParkedSelection, consumer?: string) => act('purge', selection, consumer),
  };
}

const notFound = (id: string) => new DomainError('DEAD_LETTER_NOT_FOUND', `No parked message ${id}`);
