import type { Migration } from '../../platform/db/migrate.ts';
import { inboxMigration } from '../../platform/events/event-consumer.ts';

export const eventLogMigrations: Migration[] = [
  {
    id: 'event-log/events-1',
    sql: `
      CREATE TABLE {schema}.events (
        seq bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        event_type text NOT NULL,
        user_id integer,
        timestamp_text text NOT NULL,
        occurred_at timestamptz NOT NULL,
        data json NOT NULL, -- json, not jsonb: the data keeps its fields in the published order
        project_id integer,
        defect_id integer,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX events_type ON {schema}.events (event_type, seq);
      CREATE INDEX events_project ON {schema}.events (project_id, seq);
      CREATE INDEX events_defect ON {schema}.events (defect_id, seq);
      CREATE INDEX events_user ON {schema}.events (user_id, seq);
      CREATE INDEX events_occurred ON {schema}.events (occurred_at);

      -- Which project a defect belongs to: only defect.created says so, later events inherit it.
      CREATE TABLE {schema}.defect_projects (
        defect_id integer PRIMARY KEY,
        project_id integer NOT NULL
      );

      -- Where each event stands at each consumer, from the consumers' own delivery reports.
      CREATE TABLE {schema}.deliveries (
        event_id text NOT NULL,
        consumer text NOT NULL,
        event_type text NOT NULL,
        status text NOT NULL,
        attempt integer NOT NULL,
        next_attempt_at timestamptz,
        last_error text,
        reason text,
        reported_at timestamptz NOT NULL,
        PRIMARY KEY (event_id, consumer)
      );
    `,
  },
  inboxMigration,
];
