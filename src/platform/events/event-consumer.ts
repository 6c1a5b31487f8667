import type { Database, Queryable } from '../db/database.ts';
import type { Migration } from '../db/migrate.ts';
import type { Logger } from '../logger.ts';
import { createBatchWriter } from '../batch-writer.ts';
import type { ConsumeResult, Metrics } from '../metrics/metrics.ts';
import { contractViolation, type ContractEvent, type EventType } from '../../contracts/events.ts';
import { parseEnvelope, parseEventTimestamp, type EventEnvelope } from './envelope.ts';
import type { DeliveryOutcome, EventTransport, IncomingMessage, Subscription } from './transport.ts';

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
export type EventHandler<Type extends EventType> = (tx: Queryable, event: ContractEvent<Type>, context: HandlerContext) => Promise<void>;

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

/** An event as it came, with its message and its logger. */
interface Delivery {
  event: EventEnvelope;
  message: IncomingMessage;
  log: Logger;
}

type HandledOrFailed = 'handled' | 'duplicate' | { failed: unknown };

const asFailure = (error: unknown) => ({ failed: error });

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

export const inboxMigration: Migration = {
  id: 'platform/inbox-1',
  sql: `
    CREATE TABLE {schema}.inbox (
      consumer text NOT NULL,
      event_id uuid NOT NULL,
      event_type text NOT NULL,
      handled_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (consumer, event_id)
    );
  `,
};

/** ±20 % so that messages failing together do not all come back at the same instant. */
export function withJitter(delayMs: number, random = Math.random): number {
  return Math.round(delayMs * (0.8 + 0.4 * random()));
}

/**
 * A consumer that acts on each event once: the event id goes into the inbox in the same
 * transaction as the handler's work, and the message is acknowledged only after it commits.
 * A failing handler is retried on the schedule, then parked; a message that is not an
 * event is parked at once. No message can make it throw.
 */
export function startEventConsumer(options: EventConsumerOptions): Subscription {
  const { db, log, schema, name, retryDelaysMs, metrics } = options;
  const handlers = options.handlers ?? {};
  const count = (eventType: string, result: ConsumeResult) =>
    metrics?.eventsConsumed.inc({ consumer: name, event_type: eventType, result });
  const claimSql = `
    INSERT INTO ${schema}.inbox (consumer, event_id, event_type) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING`;

  const batchClaimSql = `
    INSERT INTO ${schema}.inbox (consumer, event_id, event_type)
    SELECT $1, * FROM unnest($2::uuid[], $3::text[]) ON CONFLICT DO NOTHING RETURNING event_id`;
  /** The ids of the events the inbox had not seen, now claimed in tx. */
  const claimMany = async (tx: Queryable, events: EventEnvelope[]) => {
    const { rows } = await tx.query<{ event_id: string }>(batchClaimSql, [
      name,
      events.map((event) => event.event_id),
      events.map((event) => event.event_type),
    ]);
    return new Set(rows.map((row) => row.event_id));
  };

  /** One transaction for the events that came together; a result per event, in order. */
  const handleBatch = async (events: EventEnvelope[]): Promise<Array<'handled' | 'duplicate'>> => {
    const afterCommit: Array<() => void> = [];
    const results = await db.transaction(async (tx) => {
      const claimed = await claimMany(tx, events);
      const fresh = events.filter((event) => claimed.delete(event.event_id)); // a repeat within the batch counts once
      await options.batch!.handle(tx, fresh, { log, afterCommit: (callback) => afterCommit.push(callback) });
      const handled = new Set(fresh);
      return events.map((event) => (handled.has(event) ? ('handled' as const) : ('duplicate' as const)));
    });
    for (const callback of afterCommit) callback();
    return results;
  };
  const batcher = options.batch
    ? createBatchWriter<EventEnvelope, 'handled' | 'duplicate'>({
        write: handleBatch,
        maxBatch: options.batch.maxEvents,
        maxWaitMs: options.batch.maxWaitMs,
      })
    : undefined;

  /** Runs an event's handler in tx; false when the inbox had it already. */
  const runHandler = async (tx: Queryable, delivery: Delivery, claimed: boolean, afterCommit: Array<() => void>) => {
    if (!claimed) return 'duplicate' as const;
    // handle() checked the event's data against its type's contract before it got here.
    await findHandler(handlers, delivery.event.event_type)?.(tx, delivery.event as ContractEvent<EventType>, {
      attempt: delivery.message.attempt,
      headers: delivery.message.headers,
      log: delivery.log,
      afterCommit: (callback) => afterCommit.push(callback),
    });
    return 'handled' as const;
  };

  const handleAlone = async (delivery: Delivery): Promise<'handled' | 'duplicate'> => {
    const { event } = delivery;
    const afterCommit: Array<() => void> = [];
    const outcome = await db.transaction(async (tx) => {
      const claim = await tx.query(claimSql, [name, event.event_id, event.event_type]);
      return runHandler(tx, delivery, claim.rowCount > 0, afterCommit);
    });
    for (const callback of afterCommit) callback();
    return outcome;
  };

  /**
   * Deliveries that came together, handled one after the other (in the order they came) in
   * one transaction: four statements per event became one plus four per batch. When a
   * handler fails, all roll back; the events before it are handled again together, the
   * failing one takes its failure as its outcome (its handler is not run twice), and the
   * events after it follow. Handlers must allow a rolled-back attempt, as any retry needs.
   */
  const handleTogether = async (deliveries: Delivery[]): Promise<HandledOrFailed[]> => {
    if (deliveries.length <= 1) return Promise.all(deliveries.map((delivery) => handleAlone(delivery).catch(asFailure)));
    const afterCommit: Array<() => void> = [];
    let current = -1; // the delivery whose handler runs
    let outcomes: Array<'handled' | 'duplicate'>;
    try {
      outcomes = await db.transaction(async (tx) => {
        const claimed = await claimMany(tx, deliveries.map((delivery) => delivery.event));
        const results: Array<'handled' | 'duplicate'> = [];
        for (current = 0; current < deliveries.length; current += 1) {
          // A repeat within the batch counts once.
          results.push(await runHandler(tx, deliveries[current], claimed.delete(deliveries[current].event.event_id), afterCommit));
        }
        current = -1;
        return results;
      });
    } catch (error) {
      if (current < 0) {
        // Not a handler's failure (the claim, the commit): each alone, each its own outcome.
        const outcomes: HandledOrFailed[] = [];
        for (const delivery of deliveries) outcomes.push(await handleAlone(delivery).catch(asFailure));
        return outcomes;
      }
      const before = await handleTogether(deliveries.slice(0, current));
      const after = await handleTogether(deliveries.slice(current + 1));
      return [...before, asFailure(error), ...after];
    }
    // Committed: what a callback does after it is not the events' outcome.
    for (const callback of afterCommit) callback();
    return outcomes;
  };
  const together = options.maxEventsPerTransaction && options.maxEventsPerTransaction > 1
    ? createBatchWriter<Delivery, HandledOrFailed>({ write: handleTogether, maxBatch: options.maxEventsPerTransaction, maxWaitMs: 0 })
    : undefined;

  const handleEvent = async (delivery: Delivery): Promise<'handled' | 'duplicate'> => {
    if (batcher) return batcher.add(delivery.event);
    if (!together) return handleAlone(delivery);
    const outcome = await together.add(delivery);
    if (typeof outcome === 'object') throw outcome.failed;
    return outcome;
  };

  const handle = async (message: IncomingMessage): Promise<DeliveryOutcome> => {
    const parsed = parseEnvelope(message.body);
    if ('error' in parsed) {
      log.error({ routingKey: message.routingKey, reason: parsed.error }, 'message is not an event; parked');
      count('invalid', 'dead_letter'); // not the routing key: garbage must not mint label values
      return { kind: 'park', reason: 'invalid_message', error: parsed.error };
    }
    const { event } = parsed;
    const violation = contractViolation(event.event_type, event.data, 'consume');
    if (violation) {
      log.error({ event_id: event.event_id, event_type: event.event_type, reason: violation }, 'event data does not match the contract; parked');
      count(event.event_type, 'dead_letter');
      return { kind: 'park', reason: 'invalid_data', error: violation };
    }
    const eventLog = log.child({
      event_id: event.event_id,
      event_type: event.event_type,
      request_id: message.headers['x-request-id'],
      traceparent: message.headers.traceparent,
    });
    const stopTimer = metrics?.handlerDuration.startTimer({ consumer: name, event_type: event.event_type });
    try {
      const result = await handleEvent({ event, message, log: eventLog });
      stopTimer?.();
      eventLog.debug({ attempt: message.attempt, duplicate: result === 'duplicate' }, 'event handled');
      if (result === 'handled') {
        metrics?.deliveryLatency.observe({ consumer: name }, (Date.now() - parseEventTimestamp(event.timestamp).getTime()) / 1000);
      }
      count(event.event_type, result === 'handled' ? 'ok' : 'duplicate');
      return { kind: 'ack' };
    } catch (error) {
      stopTimer?.();
      const reason = (error as Error).message ?? String(error);
      if (error instanceof PermanentFailure) {
        eventLog.error({ err: error }, 'event cannot be handled; parked');
        count(event.event_type, 'dead_letter');
        return { kind: 'park', reason: 'permanent_failure', error: reason };
      }
      if (message.attempt > retryDelaysMs.length) {
        eventLog.error({ err: error, attempts: message.attempt }, 'event failed on every attempt; parked');
        count(event.event_type, 'dead_letter');
        return { kind: 'park', reason: 'retries_exhausted', error: reason };
      }
      const delayMs = withJitter(retryDelaysMs[message.attempt - 1]);
      eventLog.warn({ err: error, attempt: message.attempt, retryInMs: delayMs }, 'event handler failed; will retry');
      count(event.event_type, 'retry');
      return { kind: 'retry', delayMs, error: reason };
    }
  };

  return options.transport.subscribe({
    queue: name,
    bindings: options.batch?.bindings ?? Object.keys(handlers),
    prefetch: Math.max(options.prefetch ?? options.batch?.maxEvents ?? 10, options.maxEventsPerTransaction ?? 0),
    retrySteps: retryDelaysMs.length,
    handle: async (message) => {
      try {
        return await handle(message);
      } catch (error) {
        // Only a bug gets here; still the message is kept, not lost.
        return { kind: 'park', reason: 'permanent_failure', error: String(error) };
      }
    },
  });
}

/** The handler of the event's type; the event's data matched its type's contract. */
function findHandler(handlers: EventHandlers, eventType: string): EventHandler<EventType> | undefined {
  return handlers[eventType as EventType] as EventHandler<EventType> | undefined;
}
