import type { Queryable } from '../../db/database.ts';
import type { ContractEvent, EventType } from '../../../contracts/events.ts';
import type { Delivery, EventHandler, EventHandlers, HandlingContext } from './types.ts';

/** Runs an event's handler in tx; 'duplicate' when the inbox had it already. */
export async function runHandler(
  handlers: EventHandlers,
  tx: Queryable,
  delivery: Delivery,
  claimed: boolean,
  afterCommit: Array<() => void>,
): Promise<'handled' | 'duplicate'> {
  if (!claimed) return 'duplicate';
  // checkMessage() (start-event-consumer.ts) checked the event's data against its type's contract before it got here.
  await findHandler(handlers, delivery.event.event_type)?.(tx, delivery.event as ContractEvent<EventType>, {
    attempt: delivery.message.attempt,
    headers: delivery.message.headers,
    log: delivery.log,
    afterCommit: (callback) => afterCommit.push(callback),
  });
  return 'handled';
}

/** One event in a transaction of its own: the inbox claim and the handler's work commit together. */
export async function handleAlone(context: HandlingContext, delivery: Delivery): Promise<'handled' | 'duplicate'> {
  const afterCommit: Array<() => void> = [];
  const outcome = await context.db.transaction(async (tx) => {
    const claimed = await context.inbox.claimOne(tx, delivery.event);
    return runHandler(context.handlers, tx, delivery, claimed, afterCommit);
  });
  for (const callback of afterCommit) callback();
  return outcome;
}

/** The handler of the event's type; the event's data matched its type's contract. */
function findHandler(handlers: EventHandlers, eventType: string): EventHandler<EventType> | undefined {
  return handlers[eventType as EventType] as EventHandler<EventType> | undefined;
}
