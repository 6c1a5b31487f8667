import type { Database, Queryable } from '../db/database.ts';
import type { Migration } from '../db/migrate.ts';
import { inboxMigration, type EventHandler, type EventHandlers } from '../events/event-consumer.ts';
import type { Logger } from '../logger.ts';
import type { ServiceModule } from '../service.ts';
import type { TokenRevocations } from './token-revocations.ts';

/** How often a process reads what its replicas' consumer stored (the queue gives each event to one replica). */
export const REVOCATION_POLL_MS = 500;
/** Rows changed this long before the newest one seen are read again: a late commit can carry an earlier time. */
const POLL_OVERLAP_SECONDS = 30;

export const tokenRevocationMigration: Migration = {
  id: 'platform/token-revocations-1',
  sql: `
    CREATE TABLE {schema}.token_revocations (
      user_id integer PRIMARY KEY,
      valid_from_generation integer NOT NULL,
      changed_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX token_revocations_changed_at ON {schema}.token_revocations (changed_at);
  `,
};

/** The queue of a service's keeper: `<service>.token-revocations` (`event_log` → `event-log`, as its other queues). */
export const revocationConsumerName = (schema: string) => `${schema.replaceAll('_', '-')}.token-revocations`;

/**
 * Keeps a process's TokenRevocations current, in the schema of the service it runs with:
 * a consumer of the `user.*` events that void tokens stores each in the table and in
 * memory; at start the process reads the table (revocations from before it started), and
 * then polls it (what a replica's consumer stored). No call to auth per request.
 */
export function createRevocationKeeper(options: {
  schema: string;
  db: Database;
  revocations: TokenRevocations;
  log: Logger;
}): ServiceModule {
  const { schema, db, revocations, log } = options;
  const store = revocationStore(schema);
  let newestSeen: Date | undefined;
  let timer: NodeJS.Timeout | undefined;

  const readChanges = async () => {
    for (const row of await store.changedSince(db, newestSeen)) {
      revocations.revoke(row.user_id, row.valid_from_generation);
      if (!newestSeen || row.changed_at > newestSeen) newestSeen = row.changed_at;
    }
  };
  const poll = () => {
    readChanges()
      .catch((error: unknown) => log.warn({ err: error }, 'could not read token revocations'))
      .finally(() => {
        if (timer) timer = setTimeout(poll, REVOCATION_POLL_MS).unref();
      });
  };

  return {
    name: schema,
    migrations: [inboxMigration, tokenRevocationMigration],
    routes: async () => {},
    consumers: [{ name: revocationConsumerName(schema), handlers: revocationHandlers(store, revocations) }],
    async start() {
      await readChanges();
      // Embedded (PGlite) means one process: its own consumer tells it everything.
      if (db.kind === 'postgres') timer = setTimeout(poll, REVOCATION_POLL_MS).unref();
    },
    async close() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

function revocationHandlers(store: ReturnType<typeof revocationStore>, revocations: TokenRevocations): EventHandlers {
  const revokeFrom =
    (): EventHandler<'user.role_changed' | 'user.disabled' | 'user.password_changed'> => async (tx, event, context) => {
      const { user_id, token_generation } = event.data;
      await store.raise(tx, user_id, token_generation);
      context.afterCommit(() => revocations.revoke(user_id, token_generation));
    };
  return {
    'user.role_changed': revokeFrom(),
    'user.disabled': revokeFrom(),
    'user.password_changed': revokeFrom(),
  };
}

function revocationStore(schema: string) {
  return {
    /** Never lowers a user's generation: events of one user may arrive out of order. */
    async raise(tx: Queryable, userId: number, validFrom: number) {
      await tx.query(
        `INSERT INTO ${schema}.token_revocations AS r (user_id, valid_from_generation) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET valid_from_generation = EXCLUDED.valid_from_generation, changed_at = now()
         WHERE r.valid_from_generation < EXCLUDED.valid_from_generation`,
        [userId, validFrom],
      );
    },
    async changedSince(db: Queryable, since: Date | undefined) {
      const { rows } = await db.query<{ user_id: number; valid_from_generation: number; changed_at: Date }>(
        `SELECT user_id, valid_from_generation, changed_at FROM ${schema}.token_revocations
         WHERE changed_at > $1::timestamptz - make_interval(secs => $2)`,
        [since ?? new Date(0), POLL_OVERLAP_SECONDS],
      );
      return rows;
    },
  };
}
