import type { Database, Queryable } from '../db/database.ts';
import type { Migration } from '../db/migrate.ts';
import { createEvent, type EventEnvelope } from './envelope.ts';

/** Who caused the events of a change, and how to follow them (AMQP headers, never the body). */
export interface EventContext {
  userId: number | null;
  requestId?: string;
  traceparent?: string;
}

export interface PendingEvents {
  /** Records an event; it commits with the transaction, or not at all. */
  add<Data extends Record<string, unknown>>(eventType: string, data: Data): EventEnvelope<Data>;
}

export interface Outbox {
  readonly schema: string;
  /** Runs fn in one transaction with the events it adds, then wakes the relay. */
  transaction<T>(context: EventContext, fn: (tx: Queryable, events: PendingEvents) => Promise<T>): Promise<T>;
  /** Called after every commit that stored events (the relay's in-process wake-up). */
  onCommit(listener: () => void): void;
}

export const outboxMigration: Migration = {
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
    -- The relay reads only the unpublished tail; published rows do not slow it down.
    CREATE INDEX outbox_unpublished ON {schema}.outbox (id) WHERE published_at IS NULL;
  `,
};

export function createOutbox(options: { db: Database; schema: string }): Outbox {
  const { db, schema } = options;
  const listeners: Array<() => void> = [];
  const insertSql = `
    INSERT INTO ${schema}.outbox (event_id, event_type, body, headers)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[])`;

  return {
    schema,
    onCommit(listener) {
      listeners.push(listener);
    },
    async transaction(context, fn) {
      const headers = JSON.stringify(tracingHeaders(context));
      let added: EventEnvelope[] = [];
      const result = await db.transaction(async (tx) => {
        added = [];
        const value = await fn(tx, {
          add(eventType, data) {
            const event = createEvent(eventType, data, context.userId);
            added.push(event);
            return event;
          },
        });
        if (added.length > 0) {
          await tx.query(insertSql, [
            added.map((event) => event.event_id),
            added.map((event) => event.event_type),
            added.map((event) => JSON.stringify(event)),
            added.map(() => headers),
          ]);
        }
        return value;
      });
      if (added.length > 0) for (const listener of listeners) listener();
      return result;
    },
  };
}

function tracingHeaders(context: EventContext): Record<string, string> {
  const headers: Record<string, string> = {};
  if (context.requestId) headers['x-request-id'] = context.requestId;
  if (context.traceparent) headers.traceparent = context.traceparent;
  return headers;
}
