import type { Queryable } from '../../db/database.ts';
import { createBatchWriter } from '../../batch-writer.ts';
import { handleAlone, runHandler } from './handle-alone.ts';
import type { Delivery, HandleEvent, HandlingContext } from './types.ts';

type HandledOrFailed = 'handled' | 'duplicate' | { failed: unknown };

const asFailure = (error: unknown) => ({ failed: error });

/** Which delivery's handler runs in the shared transaction: -1 when none (claiming, committing). */
interface Running {
  current: number;
}

/**
 * Events that arrive together are handled one after the other, in the order they came, up
 * to `maxEventsPerTransaction` to a transaction. Each delivery still gets its own outcome.
 */
export function createTogetherMode(context: HandlingContext, maxEventsPerTransaction: number): HandleEvent {
  const together = createBatchWriter<Delivery, HandledOrFailed>({
    write: (deliveries) => handleTogether(context, deliveries),
    maxBatch: maxEventsPerTransaction,
    maxWaitMs: 0,
  });
  return async (delivery) => {
    const outcome = await together.add(delivery);
    if (typeof outcome === 'object') throw outcome.failed;
    return outcome;
  };
}

/**
 * Deliveries that came together, handled one after the other (in the order they came) in
 * one transaction: four statements per event became one plus four per batch. When a
 * handler fails, all roll back; the events before it are handled again together, the
 * failing one takes its failure as its outcome (its handler is not run twice), and the
 * events after it follow. Handlers must allow a rolled-back attempt, as any retry needs.
 */
async function handleTogether(context: HandlingContext, deliveries: Delivery[]): Promise<HandledOrFailed[]> {
  if (deliveries.length <= 1)
    return Promise.all(deliveries.map((delivery) => handleAlone(context, delivery).catch(asFailure)));
  const afterCommit: Array<() => void> = [];
  const running: Running = { current: -1 };
  let outcomes: Array<'handled' | 'duplicate'>;
  try {
    outcomes = await context.db.transaction((tx) => runInOrder(context, tx, deliveries, running, afterCommit));
  } catch (error) {
    // Not a handler's failure (the claim, the commit): each alone, each its own outcome.
    if (running.current < 0) return handleEachAlone(context, deliveries);
    return splitAround(context, deliveries, running.current, error);
  }
  // Committed: what a callback does after it is not the events' outcome.
  for (const callback of afterCommit) callback();
  return outcomes;
}

/** Claims the deliveries' events and runs their handlers in turn in tx, noting which one runs. */
async function runInOrder(
  context: HandlingContext,
  tx: Queryable,
  deliveries: Delivery[],
  running: Running,
  afterCommit: Array<() => void>,
): Promise<Array<'handled' | 'duplicate'>> {
  const claimed = await context.inbox.claimMany(
    tx,
    deliveries.map((delivery) => delivery.event),
  );
  const results: Array<'handled' | 'duplicate'> = [];
  for (running.current = 0; running.current < deliveries.length; running.current += 1) {
    const delivery = deliveries[running.current];
    // A repeat within the batch counts once.
    results.push(
      await runHandler(context.handlers, tx, delivery, claimed.delete(delivery.event.event_id), afterCommit),
    );
  }
  running.current = -1;
  return results;
}

/** Each delivery in a transaction of its own, one after the other, each with its own outcome. */
async function handleEachAlone(context: HandlingContext, deliveries: Delivery[]): Promise<HandledOrFailed[]> {
  const outcomes: HandledOrFailed[] = [];
  for (const delivery of deliveries) outcomes.push(await handleAlone(context, delivery).catch(asFailure));
  return outcomes;
}

/**
 * After the handler of `deliveries[failing]` failed and everything rolled back: those before
 * it are handled again together, it takes its failure as its outcome, those after it follow.
 */
async function splitAround(
  context: HandlingContext,
  deliveries: Delivery[],
  failing: number,
  error: unknown,
): Promise<HandledOrFailed[]> {
  const before = await handleTogether(context, deliveries.slice(0, failing));
  const after = await handleTogether(context, deliveries.slice(failing + 1));
  return [...before, asFailure(error), ...after];
}
