/** The relay's statements over one service's `<schema>.outbox`. */
export interface RelaySql {
  /** The advisory lock's key: one relay at a time per service. */
  lockKey: string;
  lock: string;
  unlock: string;
  /**
   * The next rows after the cursor ($2, $1 of them), and how many rows are left at or below
   * the cursor (one row with a null id when none follow): more than the relay has sent and
   * not yet deleted means a transaction committed a row behind the cursor after the cursor
   * passed it (ids are taken at INSERT, rows seen at COMMIT).
   */
  read: string;
  /** Whether another session waits for an advisory lock this one holds (the relay's). */
  waiting: string;
  /** Published is deleted: the outbox holds only what waits. $1: the ids. */
  delete: string;
}

export function relaySql(schema: string): RelaySql {
  return {
    lockKey: `outbox-relay:${schema}`,
    lock: 'SELECT pg_advisory_lock(hashtext($1))',
    unlock: 'SELECT pg_advisory_unlock(hashtext($1))',
    read: `
    SELECT next.*, behind.count AS behind
    FROM (SELECT count(*)::int FROM ${schema}.outbox WHERE id <= $2) behind
    LEFT JOIN LATERAL (
      SELECT id, event_id, event_type, body, headers, created_at FROM ${schema}.outbox
      WHERE id > $2 ORDER BY id LIMIT $1
    ) next ON true`,
    waiting: `
    SELECT EXISTS (
      SELECT 1 FROM pg_locks held JOIN pg_locks waiting USING (locktype, database, classid, objid, objsubid)
      WHERE held.locktype = 'advisory' AND held.pid = pg_backend_pid() AND held.granted AND NOT waiting.granted
    ) AS waiting`,
    delete: `DELETE FROM ${schema}.outbox WHERE id = ANY($1::bigint[])`,
  };
}

/** A row as the read returns it. */
export interface OutboxRow {
  id: number;
  event_id: string;
  event_type: string;
  body: string;
  headers: Record<string, string>;
  created_at: Date;
  /** Rows left in the outbox at or below the read's cursor, when it was read. */
  behind: number;
}
