import type { Database, Queryable } from '../db/database.ts';
import type { Migration } from '../db/migrate.ts';
import type { Logger } from '../logger.ts';
import { parseEnvelope, type EventEnvelope } from './envelope.ts';
import type { EventTransport, IncomingMessage, Subscription } from './transport.ts';

export type EventHandler = (tx: Queryable, event: EventEnvelope<any>) => Promise<void>;

export interface EventConsumerOptions {
  db: Database;
  transport: EventTransport;
  log: Logger;
  /** The service schema that holds the consumer's inbox. */
  schema: string;
  /** Also the name of its durable queue. */
  name: string;
  /** Handlers by event type; the queue is bound to exactly these types. */
  handlers: Record<string, EventHandler>;
  prefetch?: number;
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

/**
 * A consumer that acts on each event once: the event id goes into the inbox in the same
 * transaction as the handler's work, and the message is acknowledged only after it commits.
 */
export function startEventConsumer(options: EventConsumerOptions): Subscription {
  const { db, log, schema, name, handlers } = options;
  const claimSql = `
    INSERT INTO ${schema}.inbox (consumer, event_id, event_type) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING`;

  const handle = async (message: IncomingMessage) => {
    const parsed = typeof message.body === 'object' && !Buffer.isBuffer(message.body)
      ? parseEnvelope(JSON.stringify(message.body))
      : parseEnvelope(message.body as Buffer);
    if ('error' in parsed) {
      log.error({ routingKey: message.routingKey, reason: parsed.error }, 'unusable message dropped');
      return;
    }
    const { event } = parsed;
    const handler = handlers[event.event_type];
    if (!handler) return;
    const handled = await db.transaction(async (tx) => {
      const claim = await tx.query(claimSql, [name, event.event_id, event.event_type]);
      if (claim.rowCount === 0) return false;
      await handler(tx, event);
      return true;
    });
    log.debug({ event_id: event.event_id, event_type: event.event_type, duplicate: !handled }, 'event handled');
  };

  return options.transport.subscribe({
    queue: name,
    bindings: Object.keys(handlers),
    prefetch: options.prefetch ?? 10,
    handle,
  });
}
