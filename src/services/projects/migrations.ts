import type { Migration } from '../../platform/db/migrate.ts';
import { outboxMigrations } from '../../platform/events/outbox.ts';

export const projectsMigrations: Migration[] = [
  {
    id: 'projects/projects-1',
    sql: `
      CREATE TABLE {schema}.projects (
        id serial PRIMARY KEY,
        name text NOT NULL,
        description text,
        owner_id integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX projects_owner ON {schema}.projects (owner_id);
    `,
  },
  ...outboxMigrations,
];
