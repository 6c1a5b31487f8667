import type { Migration } from '../../platform/db/migrate.ts';
import { inboxMigration } from '../../platform/events/event-consumer.ts';
import { outboxMigrations } from '../../platform/events/outbox.ts';
import { insertOldMemberships } from '../membership-copy.ts';

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
  {
    // Membership (decision 008): the owner is a member; existing owners, reporters and
    // assignees become members of their projects.
    id: 'projects/members-1',
    sql: `
      CREATE TABLE {schema}.members (
        project_id integer NOT NULL REFERENCES {schema}.projects (id) ON DELETE CASCADE,
        user_id integer NOT NULL,
        added_by integer,
        added_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (project_id, user_id)
      );
      CREATE INDEX members_user ON {schema}.members (user_id);
      ${insertOldMemberships('{schema}.members')}

      -- The users there are, from user.registered (the auth service owns them): a member must be one.
      CREATE TABLE {schema}.known_users (
        id integer PRIMARY KEY,
        username text NOT NULL,
        full_name text
      );
      DO $$ BEGIN
        IF to_regclass('auth.users') IS NOT NULL THEN
          INSERT INTO {schema}.known_users (id, username, full_name) SELECT id, username, full_name FROM auth.users;
        END IF;
      END $$;
    `,
  },
  inboxMigration,
];
