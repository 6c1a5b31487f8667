import type { Database, Queryable } from '../db/database.ts';
import type { Migration } from '../db/migrate.ts';
import {
  contractViolation,
  EventContractViolation,
  isContractEventType,
  type ContractEvent,
  type EventData,
  type EventType,
} from '../../contracts/events.ts';
import { createEvent, type EventEnvelope } from './envelope.ts';

/** Who caused the events of a change, and how to follow them (AMQP headers, never the body). */
export interface EventContext {
  userId: number | null;
  requestId?: string;
  traceparent?: string;
}

export interface PendingEvents {
  /**
   * Records an event of the contract (src/contracts/events.ts); it commits with the
   * transaction, or not at all. `userId` overrides the context's (a self-registration's
   * actor is the user it creates). Data that does not match the contract throws
   * EventContractViolation, naming the field, so the transaction rolls back.
   */
  add<Type extends EventType>(
    eventType: Type,
    data: EventData<Type>,
    options?: { userId: number },
  ): ContractEvent<Type>;
}

export interface Outbox {
  readonly schema: string;
  /** Runs fn in one transaction with the events it adds, then wakes the relay. */
  transaction<T>(context: EventContext, fn: (tx: Queryable, events: PendingEvents) => Promise<T>): Promise<T>;
  /**
   * The same inside a transaction someone else runs (an event consumer's): call
   * `afterCommit` once it committed, to wake the relay.
   */
  within<T>(
    tx: Queryable,
    context: EventContext,
    fn: (tx: Queryable, events: PendingEvents) => Promise<T>,
  ): Promise<{ value: T; afterCommit: () => void }>;
  /**
   * One data-changing statement (INSERT/UPDATE/DELETE … RETURNING) and the events it
   * publishes, stored by that same statement: atomic without BEGIN and COMMIT, so one round
   * trip instead of four. For a change whose events are known before it runs.
   */
  statement<Row>(
    context: EventContext,
    change: { sql: string; params: unknown[] },
    addEvents: (events: PendingEvents) => void,
  ): Promise<Row[]>;
  /** Called after every commit that stored events (the relay's in-process wake-up). */
  onCommit(listener: () => void): void;
}

/** The outbox table of a service's schema, as it has grown: a service lists them all. */
export const outboxMigrations: Migration[] = [
  {
    id: 'platform/outbox-1',
    sql: `
      CREATE TABLE {schema}.outbox (
        id bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        event_type text NOT NULL,
        body text NOT NULL,
        headers jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz
      );
      CREATE INDEX outbox_unpublished ON {schema}.outbox (id) WHERE published_at IS NULL;
    `,
  },
  {
    // A published event is deleted instead of marked: marking wrote a new row version and
    // two index entries per event, and kept every event ever published (the event log
    // keeps them). The outbox holds only what waits.
    id: 'platform/outbox-2',
    sql: `
      DELETE FROM {schema}.outbox WHERE published_at IS NOT NULL;
      DROP INDEX {schema}.outbox_unpublished;
      ALTER TABLE {schema}.outbox DROP COLUMN published_at;
    `,
  },
];

/** How many committed events wait, and how long the oldest has (null when none). */
export async function outboxBacklog(
  db: Queryable,
  schema: string,
): Promise<{ pending: number; oldestSeconds: number | null }> {
  const { rows } = await db.query<{ pending: number; oldest: number | null }>(
    `SELECT count(*)::int AS pending, extract(epoch FROM now() - min(created_at))::float8 AS oldest
     FROM ${schema}.outbox`,
  );
  return { pending: rows[0].pending, oldestSeconds: rows[0].oldest };
}

/** An event collector for one change, and the parameters that store what it collected. */
function collectEvents(context: EventContext) {
  const added: EventEnvelope[] = [];
  const events: PendingEvents = {
    add<Type extends EventType>(eventType: Type, data: EventData<Type>, options?: { userId: number }) {
      if (!isContractEventType(eventType))
        throw new EventContractViolation(`${String(eventType)} is not an event type of the contract`);
      const violation = contractViolation(eventType, data, 'publish');
      if (violation) throw new EventContractViolation(violation);
      const event = createEvent(eventType, data, options?.userId ?? context.userId) as ContractEvent<Type>;
      added.push(event);
      return event;
    },
  };
  const insertParams = () => {
    const headers = JSON.stringify(tracingHeaders(context));
    return [
      added.map((event) => event.event_id),
      added.map((event) => event.event_type),
      added.map((event) => JSON.stringify(event)),
      added.map(() => headers),
    ];
  };
  return { events, added, insertParams };
}

export function createOutbox(options: { db: Database; schema: string }): Outbox {
  const { db, schema } = options;
  const listeners: Array<() => void> = [];
  /** The INSERT of events whose four arrays are parameters $first … $first+3. */
  const insertSql = (first: number) => `
    INSERT INTO ${schema}.outbox (event_id, event_type, body, headers)
    SELECT * FROM unnest($${first}::uuid[], $${first + 1}::text[], $${first + 2}::text[], $${first + 3}::jsonb[])`;
  const committed = () => listeners.forEach((listener) => listener());

  /** Runs fn with an event collector, then stores what it added, in tx. */
  const recordEvents = async <T>(
    tx: Queryable,
    context: EventContext,
    fn: (tx: Queryable, events: PendingEvents) => Promise<T>,
  ) => {
    const { events, added, insertParams } = collectEvents(context);
    const value = await fn(tx, events);
    if (added.length > 0) await tx.query(insertSql(1), insertParams());
    return { value, stored: added.length };
  };

  return {
    schema,
    onCommit(listener) {
      listeners.push(listener);
    },
    async transaction(context, fn) {
      const { value, stored } = await db.transaction((tx) => recordEvents(tx, context, fn));
      if (stored > 0) committed();
      return value;
    },
    async statement<Row>(
      context: EventContext,
      change: { sql: string; params: unknown[] },
      addEvents: (events: PendingEvents) => void,
    ) {
      const { events, added, insertParams } = collectEvents(context);
      addEvents(events);
      if (added.length === 0) return (await db.query<Row>(change.sql, change.params)).rows;
      // The events only if the change changed something.
      const { rows } = await db.query<Row>(
        `WITH changed AS (${change.sql}), stored_events AS (${insertSql(change.params.length + 1)} WHERE EXISTS (SELECT 1 FROM changed)) SELECT * FROM changed`,
        [...change.params, ...insertParams()],
      );
      committed();
      return rows;
    },
    async within(tx, context, fn) {
      const { value, stored } = await recordEvents(tx, context, fn);
      return { value, afterCommit: stored > 0 ? committed : () => undefined };
    },
  };
}

function tracingHeaders(context: EventContext): Record<string, string> {
  const headers: Record<string, string> = {};
  if (context.requestId) headers['x-request-id'] = context.requestId;
  if (context.traceparent) headers.traceparent = context.traceparent;
  return headers;
}
