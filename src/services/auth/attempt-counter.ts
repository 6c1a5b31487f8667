import type { Queryable } from '../../platform/db/database.ts';

/** A key's count in its current window, and how long until that window ends. */
export interface WindowCount {
  count: number;
  retryAfterMs: number;
}

/**
 * Fixed-window counters shared by every replica (PostgreSQL here; a Redis implementation
 * with INCR and PEXPIRE would fit the same interface). A window opens at a key's first hit
 * and lasts `windowMs`; the next hit after it ends opens a new one.
 */
export interface AttemptCounter {
  /** Counts one attempt, atomically, and returns the count including it. */
  hit(key: string, windowMs: number): Promise<WindowCount>;
  /** Takes one attempt back (an attempt that turned out to be allowed after all). */
  takeBack(key: string): Promise<void>;
  clear(key: string): Promise<void>;
}

export const attemptCounterMigration = {
  id: 'auth/attempt-counters-1',
  sql: `
    CREATE TABLE {schema}.attempt_counters (
      key text PRIMARY KEY,
      count integer NOT NULL,
      window_ends timestamptz NOT NULL
    );
    CREATE INDEX attempt_counters_window_ends ON {schema}.attempt_counters (window_ends);
  `,
};

/** Every this many hits, expired windows are deleted, so the table holds only live ones. */
const SWEEP_EVERY_HITS = 500;

/** One row per key in auth.attempt_counters; one upsert per hit (PostgreSQL and PGlite alike). */
export function createPostgresAttemptCounter(db: Queryable): AttemptCounter {
  let hitsSinceSweep = 0;
  return {
    async hit(key, windowMs) {
      if (++hitsSinceSweep >= SWEEP_EVERY_HITS) {
        hitsSinceSweep = 0;
        await db.query('DELETE FROM auth.attempt_counters WHERE window_ends < now()');
      }
      // clock_timestamp(), not now(): the same in or out of a transaction, and ms-exact.
      const { rows } = await db.query<{ count: number; retry_after_ms: number }>(
        `INSERT INTO auth.attempt_counters AS c (key, count, window_ends)
         VALUES ($1, 1, clock_timestamp() + make_interval(secs => $2::float8 / 1000))
         ON CONFLICT (key) DO UPDATE SET
           count = CASE WHEN c.window_ends <= clock_timestamp() THEN 1 ELSE c.count + 1 END,
           window_ends = CASE WHEN c.window_ends <= clock_timestamp() THEN EXCLUDED.window_ends ELSE c.window_ends END
         RETURNING count, GREATEST(0, EXTRACT(EPOCH FROM (window_ends - clock_timestamp())) * 1000)::float8 AS retry_after_ms`,
        [key, windowMs],
      );
      return { count: rows[0].count, retryAfterMs: rows[0].retry_after_ms };
    },
    async takeBack(key) {
      await db.query('UPDATE auth.attempt_counters SET count = count - 1 WHERE key = $1 AND count > 0', [key]);
    },
    async clear(key) {
      await db.query('DELETE FROM auth.attempt_counters WHERE key = $1', [key]);
    },
  };
}
