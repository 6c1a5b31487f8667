import type { Database } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { outboxBacklog, type Outbox } from './outbox.ts';
import { formatEventLogLine } from './python-json.ts';
import type { EventTransport, OutgoingMessage } from './transport.ts';

export interface OutboxRelayOptions {
  db: Database;
  outbox: Outbox;
  transport: EventTransport;
  log: Logger;
  /** AMQP app_id of the published messages: the publishing service. */
  appId: string;
  batchSize?: number;
  /** Chunks of batchSize in flight in one transaction. */
  chunks?: number;
  /** After a failed publish, the next attempt (sooner if the broker reconnects). */
  retryDelayMs?: number;
  /** A safety net only: commits wake the relay at once. */
  pollIntervalMs?: number;
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
}

/**
 * Publishes a service's committed events in commit order and marks them published only
 * after the broker confirmed them. One relay at a time per service holds the advisory
 * lock, so several replicas never publish the same rows side by side or out of order.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, outbox, transport, log, appId } = options;
  const { schema } = outbox;
  const batchSize = options.batchSize ?? 500;
  const chunks = options.chunks ?? 4;
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  const pollIntervalMs = options.pollIntervalMs ?? 5_000;

  let running: Promise<void> | undefined;
  let wokenWhileRunning = false;
  let closed = false;
  let lastError: string | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;

  const selectSql = `
    SELECT id, event_id, event_type, body, headers, created_at FROM ${schema}.outbox
    WHERE published_at IS NULL AND id > $2 ORDER BY id LIMIT $1`;
  const markSql = `UPDATE ${schema}.outbox SET published_at = now() WHERE id = ANY($1::bigint[])`;

  /**
   * Publishes up to `chunks` × `batchSize` rows in one transaction and returns them. The next
   * chunk is read while the broker takes the previous one (a chunk waited for its confirms
   * before the next was read: the relay sat idle half the time); all are marked published
   * once every confirm is in. A failed confirm rolls all back: at least once, in order.
   */
  const publishBatch = () =>
    db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`outbox-relay:${schema}`]);
      const published: OutboxRow[] = [];
      const confirms: Array<Promise<void>> = [];
      for (let chunk = 0; chunk < chunks; chunk += 1) {
        const after = published.at(-1)?.id ?? 0;
        const { rows } = await tx.query<OutboxRow>(selectSql, [batchSize, after]);
        if (rows.length === 0) break;
        const confirmed = transport.publish(rows.map((row) => toMessage(row, appId)), tx);
        confirmed.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
        confirms.push(confirmed);
        published.push(...rows);
        if (rows.length < batchSize) break;
      }
      if (published.length === 0) return published;
      await Promise.all(confirms);
      await tx.query(markSql, [published.map((row) => row.id)]);
      return published;
    });

  const drain = async () => {
    do {
      wokenWhileRunning = false;
      let published: OutboxRow[];
      do {
        published = await publishBatch();
        for (const row of published) {
          log.info(formatEventLogLine(JSON.parse(row.body)));
          options.metrics?.eventsPublished.inc({ service: appId, event_type: row.event_type });
        }
      } while (published.length === batchSize * chunks && !closed);
    } while (wokenWhileRunning && !closed);
  };

  const wake = () => {
    if (closed) return;
    if (running) {
      wokenWhileRunning = true;
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
