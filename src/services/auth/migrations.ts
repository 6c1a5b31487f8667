import type { Migration } from '../../platform/db/migrate.ts';
import { inboxMigration } from '../../platform/events/event-consumer.ts';
import { outboxMigrations } from '../../platform/events/outbox.ts';
import { createMembershipCopy } from '../membership-copy.ts';

export const authMigrations: Migration[] = [
  {
    id: 'auth/users-1',
    sql: `
      CREATE TABLE {schema}.users (
        id serial PRIMARY KEY,
        username text NOT NULL,
        email text NOT NULL,
        full_name text,
        password_hash text NOT NULL,
        role text NOT NULL CHECK (role IN ('admin', 'manager', 'engineer', 'observer')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE UNIQUE INDEX users_username_unique ON {schema}.users (lower(username));
    `,
  },
  ...outboxMigrations,
  inboxMigration,
  // Who shares a project with whom (GET /v1/users), from project.* events (decision 008).
  createMembershipCopy('auth').migration,
];
