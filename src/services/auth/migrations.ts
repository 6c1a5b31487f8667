import type { Migration } from '../../platform/db/migrate.ts';
import { inboxMigration } from '../../platform/events/event-consumer.ts';
import { outboxMigrations } from '../../platform/events/outbox.ts';
import { attemptCounterMigration } from './attempt-counter.ts';
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
  {
    // token_generation: raised by a role change, a disable and a password change; tokens
    // carry the one they were issued with (decision 009).
    id: 'auth/users-2-disabled-token-generation',
    sql: `
      ALTER TABLE {schema}.users
        ADD COLUMN disabled boolean NOT NULL DEFAULT false,
        ADD COLUMN token_generation integer NOT NULL DEFAULT 0;
    `,
  },
  attemptCounterMigration,
  inboxMigration,
  // Who shares a project with whom (GET /v1/users), from project.* events (decision 008).
  createMembershipCopy('auth').migration,
];
