import type { Migration } from '../../platform/db/migrate.ts';
import { inboxMigration } from '../../platform/events/event-consumer.ts';
import { outboxMigrations } from '../../platform/events/outbox.ts';
import { createMembershipCopy } from '../membership-copy.ts';

export const defectsMigrations: Migration[] = [
  {
    id: 'defects/defects-1',
    sql: `
      CREATE TABLE {schema}.defects (
        id serial PRIMARY KEY,
        project_id integer NOT NULL,
        title text NOT NULL,
        description text,
        status text NOT NULL,
        priority text NOT NULL,
        reporter_id integer NOT NULL,
        assignee_id integer,
        due_date date,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX defects_project ON {schema}.defects (project_id);
      CREATE INDEX defects_assignee ON {schema}.defects (assignee_id);
      CREATE INDEX defects_status ON {schema}.defects (status);

      -- What this service knows of projects, from project.* events (and the projects API on a miss).
      CREATE TABLE {schema}.known_projects (
        id integer PRIMARY KEY,
        name text NOT NULL,
        owner_id integer NOT NULL,
        deleted_at timestamptz
      );
    `,
  },
  ...outboxMigrations,
  inboxMigration,
  // Who is a member of which project, from project.* events (decision 008).
  createMembershipCopy('defects').migration,
];
