import { createBatchWriter } from '../../batch-writer.ts';
import type { Logger } from '../../logger.ts';
import type { EventEnvelope } from '../envelope.ts';
import type { BatchOptions, HandleEvent, HandlingContext } from './types.ts';

/** Events that arrive about the same time go to the batch handler together, in one transaction. */
export function createBatchMode(context: HandlingContext, batch: BatchOptions, log: Logger): HandleEvent {
  const batcher = createBatchWriter<EventEnvelope, 'handled' | 'duplicate'>({
    write: (events) => handleBatch(context, batch, log, events),
    maxBatch: batch.maxEvents,
    maxWaitMs: batch.maxWaitMs,
  });
  return (delivery) => batcher.add(delivery.event);
}

/** One transaction for the events that came together; a result per event, in order. */
async function handleBatch(
  context: HandlingContext,
  batch: BatchOptions,
  log: Logger,
  events: EventEnvelope[],
): Promise<Array<'handled' | 'duplicate'>> {
  const afterCommit: Array<() => void> = [];
  const results = await context.db.transaction(async (tx) => {
    const claimed = await context.inbox.claimMany(tx, events);
    const fresh = events.filter((event) => claimed.delete(event.event_id)); // a repeat within the batch counts once
    await batch.handle(tx, fresh, { log, afterCommit: (callback) => afterCommit.push(callback) });
    const handled = new Set(fresh);
    return events.map((event) => (handled.has(event) ? ('handled' as const) : ('duplicate' as const)));
  });
  for (const callback of afterCommit) callback();
  return results;
}
