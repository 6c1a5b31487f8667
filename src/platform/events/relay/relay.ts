import type { Database } from '../../db/database.ts';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { createWakeableLoop } from '../../wakeable-loop.ts';
import { outboxBacklog, type Outbox } from '../outbox.ts';
import { formatEventLogLine } from '../python-json.ts';
import type { EventTransport } from '../transport.ts';
import { burst, type BurstSettings } from './burst.ts';
import { relaySql, type OutboxRow } from './relay-sql.ts';

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

/**
 * Publishes a service's committed events in commit order and deletes them from the outbox
 * only after the transport has them. One relay at a time per service holds the advisory
 * lock, so several replicas never publish the same rows side by side or out of order.
 *
 * While it holds the lock the relay keeps publishing (burst.ts): it reads and sends the next
 * rows while the broker still confirms earlier ones (up to maxInFlight), and deletes each
 * batch once it and every batch before it are confirmed. Waiting for each batch's confirms
 * before reading on had events wait a whole confirm round trip behind the previous batch.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, outbox, transport, log } = options;
  const { schema } = outbox;
  const settings = burstSettings(options);
  const pollIntervalMs = options.pollIntervalMs ?? 5_000;
  let lastError: string | undefined;
  let pollTimer: NodeJS.Timeout | undefined;

  const loop = createWakeableLoop({
    run: (signal) => burst(settings, signal),
    retryDelayMs: options.retryDelayMs ?? 1_000,
    onError(error) {
      const message = error instanceof Error ? error.message : String(error);
      options.metrics?.publishErrors.inc({ service: options.appId });
      if (lastError !== message)
        log.warn({ err: error, schema }, 'outbox relay could not publish; events stay in the outbox');
      lastError = message;
    },
    onRecovered() {
      log.info({ schema }, 'outbox relay publishing again');
      lastError = undefined;
    },
  });

  return {
    start() {
      outbox.onCommit(loop.wake);
      transport.onReady(loop.wake);
      pollTimer = setInterval(loop.wake, pollIntervalMs).unref();
      loop.wake();
    },
    wake: loop.wake,
    async status() {
      if (lastError) return { ok: false, detail: `outbox ${schema}: publishing failing: ${lastError}` };
      const { oldestSeconds: oldest, pending } = await outboxBacklog(db, schema);
      if (oldest !== null && oldest > STUCK_AFTER_SECONDS) {
        return {
          ok: false,
          detail: `outbox ${schema}: stuck: ${pending} events waiting, the oldest for ${Math.round(oldest)} s`,
        };
      }
      return { ok: true, detail: `outbox ${schema}: publishing (${pending} waiting)` };
    },
    async close() {
      clearInterval(pollTimer);
      await loop.close();
    },
  };
}

/** The options with their defaults (the figures in docs/delivery-guarantees.md). */
function burstSettings(options: OutboxRelayOptions): BurstSettings {
  const { db, transport, log, appId, metrics } = options;
  return {
    db,
    transport,
    appId,
    sql: relaySql(options.outbox.schema),
    batchSize: options.batchSize ?? 500,
    maxInFlight: options.maxInFlight ?? 2_000,
    maxBurstMs: options.maxBurstMs ?? 1_000,
    confirmTimeoutMs: options.confirmTimeoutMs ?? 30_000,
    announce(rows: OutboxRow[]) {
      for (const row of rows) {
        log.info(formatEventLogLine(JSON.parse(row.body) as Parameters<typeof formatEventLogLine>[0]));
        metrics?.eventsPublished.inc({ service: appId, event_type: row.event_type });
      }
    },
  };
}
