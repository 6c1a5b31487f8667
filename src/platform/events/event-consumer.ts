/**
 * The consumer runtime (each event handled once, retried, parked), in `consumer/`:
 * - `start-event-consumer.ts`: the entry — parse, contract check, outcome, metrics;
 * - `inbox.ts`: the inbox table and its claims (one event, many);
 * - `handle-alone.ts`, `handle-together.ts`, `handle-batch.ts`: the three handling modes;
 * - `outcome.ts`: retry or park after a failure, with the schedule's jitter;
 * - `types.ts`: handlers, options, PermanentFailure.
 * Services import it from here.
 */
export { startEventConsumer } from './consumer/start-event-consumer.ts';
export { inboxMigration } from './consumer/inbox.ts';
export { withJitter } from './consumer/outcome.ts';
export {
  PermanentFailure,
  type BatchEventHandler,
  type BatchOptions,
  type EventConsumerOptions,
  type EventHandler,
  type EventHandlers,
  type HandlerContext,
} from './consumer/types.ts';
