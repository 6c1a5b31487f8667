import { EVENTS_EXCHANGE } from '../transport.ts';

/** The in-process transport's tables: its bindings and its queues' messages (deliveries). */
export const SCHEMA = 'event_transport';

export const migrations = [
  {
    id: 'event-transport-1',
    sql: `
      -- A consumer's queue exists once it subscribed: from then on events routed to it wait here.
      CREATE TABLE {schema}.bindings (
        queue text NOT NULL,
        pattern text NOT NULL,
        PRIMARY KEY (queue, pattern)
      );
      CREATE TABLE {schema}.deliveries (
        id bigserial PRIMARY KEY,
        queue text NOT NULL,
        routing_key text NOT NULL,
        message_id text NOT NULL,
        body text NOT NULL,
        headers jsonb NOT NULL DEFAULT '{}',
        attempt integer NOT NULL DEFAULT 1,
        available_at timestamptz NOT NULL DEFAULT now(),
        last_error text,
        parked_at timestamptz,
        park_reason text,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX deliveries_due ON {schema}.deliveries (queue, available_at, id) WHERE parked_at IS NULL;
    `,
  },
  {
    id: 'event-transport-2',
    sql: `ALTER TABLE {schema}.bindings ADD COLUMN exchange text NOT NULL DEFAULT '${EVENTS_EXCHANGE}';`,
  },
];

/** A message waiting in a queue. */
export interface DeliveryRow {
  id: number;
  routing_key: string;
  message_id: string;
  body: string;
  headers: Record<string, unknown>;
  attempt: number;
}

/** The body as JSON when it parses, else as the text it is. */
export function parseOrText(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
