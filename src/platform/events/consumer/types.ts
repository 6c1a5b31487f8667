import type { Database, Queryable } from '../../db/database.ts';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import type { ContractEvent, EventType } from '../../../contracts/events.ts';
import type { EventEnvelope } from '../envelope.ts';
import type { EventTransport, IncomingMessage } from '../transport.ts';
import type { Inbox } from './inbox.ts';

export interface HandlerContext {
  /** The consumer's logger with the event's id and type, request id and traceparent bound. */
  log: Logger;
  /** The message's AMQP headers (x-request-id, traceparent). */
  headers: Record<string, unknown>;
  /** Runs after the handler's transaction committed (to wake an outbox relay, say). */
  afterCommit(callback: () => void): void;
  /** 1 on the first delivery. */
  attempt: number;
}

/** Handles one event of the contract, given its type's data (checked against the contract before). */
export type EventHandler<Type extends EventType> = (
  tx: Queryable,
  event: ContractEvent<Type>,
  context: HandlerContext,
) => Promise<void>;

/** A consumer's handlers by event type: the queue is bound to exactly these types. */
export type EventHandlers = { [Type in EventType]?: EventHandler<Type> };

/**
 * Takes many events in one transaction (each once: the inbox filters those seen before).
 * For work that is cheap per event and costly per transaction, like recording them.
 */
export type BatchEventHandler = (
  tx: Queryable,
  events: EventEnvelope[],
  context: Pick<HandlerContext, 'afterCommit' | 'log'>,
) => Promise<void>;

export interface BatchOptions {
  handle: BatchEventHandler;
  /** Events bound (topic patterns), as `handlers`' keys are otherwise. */
  bindings: string[];
  maxEvents: number;
  maxWaitMs: number;
}

/** Thrown by a handler for a failure no retry can mend: the message is parked at once. */
export class PermanentFailure extends Error {
  override name = 'PermanentFailure';
}

export interface EventConsumerOptions {
  db: Database;
  transport: EventTransport;
  log: Logger;
  /** The service schema that holds the consumer's inbox. */
  schema: string;
  /** Also the name of its durable queue. */
  name: string;
  /** Handlers by event type; the queue is bound to exactly these types. */
  handlers?: EventHandlers;
  /** Instead of `handlers`: events handled many to a transaction. */
  batch?: BatchOptions;
  /** One retry after each delay, then the dead-letter queue. */
  retryDelaysMs: number[];
  prefetch?: number;
  /**
   * With `handlers`: events that arrive together are handled one after the other, in the
   * order they came, up to this many to a transaction (prefetch is raised to match).
   */
  maxEventsPerTransaction?: number;
  metrics?: Metrics;
}

/** An event as it came, with its message and its logger. */
export interface Delivery {
  event: EventEnvelope;
  message: IncomingMessage;
  log: Logger;
}

/** What a handling mode makes of a delivery; it throws the handler's failure. */
export type HandleEvent = (delivery: Delivery) => Promise<'handled' | 'duplicate'>;

/** What every handling mode works with: the database, the inbox, the handlers. */
export interface HandlingContext {
  db: Database;
  inbox: Inbox;
  handlers: EventHandlers;
}
