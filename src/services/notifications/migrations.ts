import type { Migration } from '../../platform/db/migrate.ts';
import { inboxMigration } from '../../platform/events/event-consumer.ts';

/**
 * The notifications service's own copies of what it needs from the other services, fed by
 * their events only (it never reads their tables), and the record of the mail it sent.
 *
 * Events can arrive out of order (another service's events interleave, a retried event
 * comes back after later ones), so every column is filled by whichever event knows it, and
 * each mutable field keeps the timestamp of the event that set it (`*_at`, the envelope's
 * UTC timestamp): an older event never overwrites a newer value.
 */
export const notificationsMigrations: Migration[] = [
  {
    id: 'notifications/directory-1',
    sql: `
      CREATE TABLE {schema}.users (
        id integer PRIMARY KEY,
        username text NOT NULL,
        email text NOT NULL,
        full_name text
      );

      CREATE TABLE {schema}.projects (
        id integer PRIMARY KEY,
        name text,
        name_at timestamp,
        deleted_at timestamp
      );

      CREATE TABLE {schema}.defects (
        id integer PRIMARY KEY,
        project_id integer,
        reporter_id integer,
        title text,
        title_at timestamp,
        status text,
        status_at timestamp,
        priority text,
        assignee_id integer,
        assignee_at timestamp,
        deleted_at timestamp
      );

      -- One row per e-mail that left: a retried or redelivered event skips its recipients here.
      CREATE TABLE {schema}.sent_mail (
        event_id uuid NOT NULL,
        recipient text NOT NULL,
        event_type text NOT NULL,
        subject text NOT NULL,
        message_id text NOT NULL,
        sent_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (event_id, recipient)
      );
    `,
  },
  inboxMigration,
  {
    // Assignment mails per recipient and defect in the last hour (the rate limit, notifier.ts)
    // are counted from the mail that really left; older rows keep defect_id null.
    id: 'notifications/sent-mail-defect-2',
    sql: `
      ALTER TABLE {schema}.sent_mail ADD COLUMN defect_id integer;
      CREATE INDEX sent_mail_by_recipient_and_defect ON {schema}.sent_mail (recipient, defect_id, sent_at)
        WHERE defect_id IS NOT NULL;
    `,
  },
];
