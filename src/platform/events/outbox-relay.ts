import type { Database } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { outboxBacklog, type Outbox } from './outbox.ts';
import { withTimeout } from '../timeout.ts';
import { formatEventLogLine } from './python-json.ts';
import type { EventTransport, OutgoingMessage } from './transport.ts';

export interface OutboxRelayOptions {
  db: Database;
  outbox: Outbox;
  transport: EventTransport;
  log: Logger;
  /** AMQP app_id of the published messages: the publishing service. */
  appId: string;
  /** Rows read and published together. */
  batchSize?: number;
  /** Rows published and not yet confirmed, at most. */
  maxInFlight?: number;
  /** A busy relay lets go of its lock after this long if another replica's relay waits for it. */
  maxBurstMs?: number;
  /** After a failed publish, the next attempt (sooner if the broker reconnects). */
  retryDelayMs?: number;
  /** A safety net only: commits wake the relay at once. */
  pollIntervalMs?: number;
  /**
   * A confirm that has not come by then fails its batch (published again later): a broker
   * that blocks publishers (a memory or disk alarm) must not hold the relay, its lock and
   * its connection, nor the shutdown, for ever. EVENTS_CONFIRM_TIMEOUT; 30 s if not given.
   */
  confirmTimeoutMs?: number;
  metrics?: Metrics;
}

/** A relay that is woken on every commit never leaves an event this long. */
const STUCK_AFTER_SECONDS = 30;

export interface RelayStatus {
  ok: boolean;
  detail: string;
}

export interface OutboxRelay {
  start(): void;
  wake(): void;
  /** Not ok while publishing fails, or when events wait longer than they ever should. */
  status(): Promise<RelayStatus>;
  close(): Promise<void>;
}

interface OutboxRow {
  id: number;
  event_id: string;
  event_type: string;
  body: string;
  headers: Record<string, string>;
  created_at: Date;
  /** Rows left in the outbox at or below the read's cursor, when it was read. */
  behind: number;
}

/**
 * Publishes a service's committed events in commit order and deletes them from the outbox
 * only after the broker confirmed them. One relay at a time per service holds the advisory
 * lock, so several replicas never publish the same rows side by side or out of order.
 *
 * While it holds the lock the relay keeps publishing: it reads and sends the next rows while
 * the broker still confirms earlier ones (up to maxInFlight), and deletes each batch once it
 * and every batch before it are confirmed. Waiting for each batch's confirms before reading
 * on had events wait a whole confirm round trip behind the previous batch.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, outbox, transport, log, appId } = options;
  const { schema } = outbox;
  const batchSize = options.batchSize ?? 500;
  const maxInFlight = options.maxInFlight ?? 2_000;
  const maxBurstMs = options.maxBurstMs ?? 1_000;
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  const pollIntervalMs = options.pollIntervalMs ?? 5_000;
  const confirmTimeoutMs = options.confirmTimeoutMs ?? 30_000;
  const lockKey = `outbox-relay:${schema}`;

  let running: Promise<void> | undefined;
  let wokenWhileRunning = false;
  let signalWake: (() => void) | undefined;
  let closed = false;
  let lastError: string | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;

  /** Resolves at the next wake (a commit, a reconnection, the poll). */
  const nextWake = () => new Promise<void>((resolve) => (signalWake = resolve));

  /**
   * The next rows after the cursor, and how many rows are left at or below the cursor (one
   * row with a null id when none follow): more than the relay has sent and not yet deleted
   * means a transaction committed a row behind the cursor after the cursor passed it (ids
   * are taken at INSERT, rows seen at COMMIT).
   */
  const readSql = `
    SELECT next.*, behind.count AS behind
    FROM (SELECT count(*)::int FROM ${schema}.outbox WHERE id <= $2) behind
    LEFT JOIN LATERAL (
      SELECT id, event_id, event_type, body, headers, created_at FROM ${schema}.outbox
      WHERE id > $2 ORDER BY id LIMIT $1
    ) next ON true`;
  /** Whether another session waits for an advisory lock this one holds (the relay's). */
  const waitingSql = `
    SELECT EXISTS (
      SELECT 1 FROM pg_locks held JOIN pg_locks waiting USING (locktype, database, classid, objid, objsubid)
      WHERE held.locktype = 'advisory' AND held.pid = pg_backend_pid() AND held.granted AND NOT waiting.granted
    ) AS waiting`;
  /** Published is deleted: the outbox holds only what waits. */
  const deleteSql = `DELETE FROM ${schema}.outbox WHERE id = ANY($1::bigint[])`;

  const announce = (rows: OutboxRow[]) => {
    for (const row of rows) {
      log.info(formatEventLogLine(JSON.parse(row.body)));
      options.metrics?.eventsPublished.inc({ service: appId, event_type: row.event_type });
    }
  };

  /**
   * Publishes while there is something to publish, on a connection holding the lock; true
   * when it stopped (after maxBurstMs, for a replica waiting) with rows perhaps left.
   * Statements run in the order they are sent on that connection, so when a read runs, the
   * relay knows exactly how many of the rows it sent are still there.
   */
  const burst = () =>
    db.session(async (connection) => {
      await connection.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey]);
      let startedAt = performance.now();
      const batches: Array<Promise<void>> = []; // each batch's confirm and DELETE, in order
      let cursor = 0;
      let sentNotDeleted = 0; // published rows whose DELETE is not sent yet
      let inFlight = 0; // published rows whose batch is not settled
      let failure: unknown; // the first batch that failed: later ones are not deleted
      let previous: Promise<void> = Promise.resolve();
      // Embedded, publishing is storing rows in the same database, on its one connection:
      // stored and deleted from the outbox in one transaction, the hand-over neither loses
      // nor repeats. One batch at a time, after the one before succeeded.
      const handedOver = transport.kind === 'in-process' && db.kind === 'embedded';

      /** Publishes at once; deletes once this batch and all before it are confirmed. */
      const send = (rows: OutboxRow[]) => {
        const messages = rows.map((row) => toMessage(row, appId));
        const ids = rows.map((row) => row.id);
        const confirmed = handedOver
          ? undefined
          : withTimeout(transport.publish(messages, connection), confirmTimeoutMs, 'the broker\'s confirm');
        // Nothing more is sent after a failed batch: a later one must not overtake it.
        confirmed?.catch((error: unknown) => (failure ??= error));
        sentNotDeleted += rows.length;
        inFlight += rows.length;
        const done = previous.then(async () => {
          try {
            if (failure) return; // a batch before failed: this one is published again, after it
            if (handedOver) {
              await db.transaction(async (tx) => {
                await transport.publish(messages, tx);
                await tx.query(deleteSql, [ids]);
              });
              sentNotDeleted -= rows.length;
            } else {
              await confirmed;
              sentNotDeleted -= rows.length;
              await connection.query(deleteSql, [ids]);
            }
            announce(rows);
          } catch (error) {
            failure ??= error;
          } finally {
            inFlight -= rows.length;
            batches.shift();
          }
        });
        batches.push(done);
        previous = done;
      };

      try {
        while (!closed && !failure) {
          if (performance.now() - startedAt > maxBurstMs) {
            // Handing over costs a pause (every confirm awaited, the lock taken again): only
            // when another replica's relay waits for the lock.
            if ((await connection.query<{ waiting: boolean }>(waitingSql)).rows[0].waiting) return true;
            startedAt = performance.now();
          }
          wokenWhileRunning = false;
          // What the read will count of ours: the DELETEs sent before it (a batch confirmed
          // while the read runs sends its DELETE after the read).
          const ours = sentNotDeleted;
          const read = await connection.query<OutboxRow>(readSql, [batchSize, cursor]);
          const rows = read.rows.filter((row) => row.id !== null);
          if (read.rows[0].behind > ours) {
            // A late row: publish it before anything after it, reading again from the oldest
            // row once everything in flight is deleted.
            await previous;
            cursor = 0;
            continue;
          }
          if (failure) break;
          if (rows.length > 0) {
            send(rows);
            cursor = rows.at(-1)!.id;
          }
          if (inFlight >= maxInFlight) await batches[0];
          else if (rows.length < batchSize) {
            // Caught up: read again when woken; stop once all is confirmed and nothing came.
            if (!wokenWhileRunning) await Promise.race([previous, nextWake()]);
            if (!wokenWhileRunning && inFlight === 0) break;
          }
        }
        return false;
      } finally {
        await previous;
        await connection.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]);
        if (failure) throw failure;
      }
    });

  const drain = async () => {
    let more: boolean;
    do more = await burst();
    while ((more || wokenWhileRunning) && !closed);
  };

  const wake = () => {
    if (closed) return;
    if (running) {
      wokenWhileRunning = true;
      signalWake?.();
      return;
    }
    clearTimeout(retryTimer);
    running = drain()
      .then(() => {
        if (lastError) log.info({ schema }, 'outbox relay publishing again');
        lastError = undefined;
      })
      .catch((error: Error) => {
        options.metrics?.publishErrors.inc({ service: appId });
        if (lastError !== error.message) log.warn({ err: error, schema }, 'outbox relay could not publish; events stay in the outbox');
        lastError = error.message;
        if (!closed) retryTimer = setTimeout(wake, retryDelayMs);
      })
      .finally(() => {
        running = undefined;
      });
  };

  return {
    start() {
      outbox.onCommit(wake);
      transport.onReady(wake);
      pollTimer = setInterval(wake, pollIntervalMs).unref();
      wake();
    },
    wake,
    async status() {
      if (lastError) return { ok: false, detail: `outbox ${schema}: publishing failing: ${lastError}` };
      const { oldestSeconds: oldest, pending } = await outboxBacklog(db, schema);
      if (oldest !== null && oldest > STUCK_AFTER_SECONDS) {
        return { ok: false, detail: `outbox ${schema}: stuck: ${pending} events waiting, the oldest for ${Math.round(oldest)} s` };
      }
      return { ok: true, detail: `outbox ${schema}: publishing (${pending} waiting)` };
    },
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      clearInterval(pollTimer);
      await running;
    },
  };
}

function toMessage(row: OutboxRow, appId: string): OutgoingMessage {
  return {
    routingKey: row.event_type,
    messageId: row.event_id,
    type: row.event_type,
    appId,
    timestamp: row.created_at,
    body: Buffer.from(row.body, 'utf8'),
    headers: row.headers,
  };
}
