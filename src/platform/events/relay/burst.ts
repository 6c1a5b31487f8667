import type { Database } from '../../db/database.ts';
import type { LoopSignal } from '../../wakeable-loop.ts';
import type { EventTransport } from '../transport.ts';
import { publishPathFor } from './publish-path.ts';
import { PublishingSession, type SessionSettings } from './publishing-session.ts';
import type { RelaySql } from './relay-sql.ts';

export interface BurstSettings extends Omit<SessionSettings, 'path'> {
  db: Database;
  transport: EventTransport;
  sql: RelaySql;
  /** A busy relay lets go of its lock after this long if another replica's relay waits for it. */
  maxBurstMs: number;
  confirmTimeoutMs: number;
}

/**
 * Publishes while there is something to publish, on a connection of its own holding the
 * lock; true when it stopped (after maxBurstMs, for a replica waiting) with rows perhaps left.
 */
export function burst(settings: BurstSettings, signal: LoopSignal): Promise<boolean> {
  const { db, transport, sql, confirmTimeoutMs } = settings;
  return db.session(async (connection) => {
    await connection.query(sql.lock, [sql.lockKey]);
    const path = publishPathFor(transport, db, connection, sql, confirmTimeoutMs);
    const session = new PublishingSession(connection, { ...settings, path });
    let outcome: { more: boolean } | { error: unknown };
    try {
      outcome = { more: await publishWhileHeld(session, settings, signal) };
    } catch (error) {
      outcome = { error };
    }
    // Every batch settled before the lock goes; a failed batch is the error to report.
    await session.settled();
    await connection.query(sql.unlock, [sql.lockKey]);
    if (session.failure) throw session.failure;
    if ('error' in outcome) throw outcome.error;
    return outcome.more;
  });
}

/** Reads and sends until caught up and settled, a failure, closing, or handing the lock over. */
async function publishWhileHeld(
  session: PublishingSession,
  settings: BurstSettings,
  signal: LoopSignal,
): Promise<boolean> {
  let startedAt = performance.now();
  while (!signal.closed && !session.failure) {
    if (performance.now() - startedAt > settings.maxBurstMs) {
      // Handing over costs a pause (every confirm awaited, the lock taken again): only
      // when another replica's relay waits for the lock.
      if (await session.anotherRelayWaits()) return true;
      startedAt = performance.now();
    }
    signal.clearWoken();
    const { rows, late } = await session.readNext();
    if (late) {
      await session.rewind();
      continue;
    }
    if (session.failure) break;
    if (rows.length > 0) await session.send(rows);
    if (session.full) await session.oldestSettled();
    else if (rows.length < settings.batchSize) {
      // Caught up: read again when woken; stop once all is settled and nothing came.
      if (!signal.woken) await Promise.race([session.settled(), signal.nextWake()]);
      if (!signal.woken && session.idle) break;
    }
  }
  return false;
}
