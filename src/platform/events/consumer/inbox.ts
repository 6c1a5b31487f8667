import type { Queryable } from '../../db/database.ts';
import type { Migration } from '../../db/migrate.ts';
import type { EventEnvelope } from '../envelope.ts';

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

/** A consumer's inbox: an event id claimed in the handler's transaction is handled once. */
export interface Inbox {
  /** True when the inbox had not seen the event; it is now claimed in tx. */
  claimOne(tx: Queryable, event: EventEnvelope): Promise<boolean>;
  /** The ids of the events the inbox had not seen, now claimed in tx. */
  claimMany(tx: Queryable, events: EventEnvelope[]): Promise<Set<string>>;
}

export function createInbox(schema: string, consumer: string): Inbox {
  const claimSql = `
    INSERT INTO ${schema}.inbox (consumer, event_id, event_type) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING`;
  const batchClaimSql = `
    INSERT INTO ${schema}.inbox (consumer, event_id, event_type)
    SELECT $1, * FROM unnest($2::uuid[], $3::text[]) ON CONFLICT DO NOTHING RETURNING event_id`;
  return {
    async claimOne(tx, event) {
      const claim = await tx.query(claimSql, [consumer, event.event_id, event.event_type]);
      return claim.rowCount > 0;
    },
    async claimMany(tx, events) {
      const { rows } = await tx.query<{ event_id: string }>(batchClaimSql, [
        consumer,
        events.map((event) => event.event_id),
        events.map((event) => event.event_type),
      ]);
      return new Set(rows.map((row) => row.event_id));
    },
  };
}
