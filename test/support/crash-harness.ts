import fs from 'node:fs/promises';
import pg from 'pg';
import { TEST_POSTGRES_URL } from './environment.ts';
import type { ServiceProcess } from './processes.ts';
import { dropDatabase, eventually } from './test-system.ts';

export { dropDatabase };

/**
 * The pieces the crash tests share: a steady write load that keeps its own history, the
 * Jepsen total-queue accounting over that history, and PostgreSQL locks held by the test
 * so that a process blocks exactly at the statement that follows the step under test.
 */

/** A database URL no other test uses (created by the first process that connects). */
export const freshDatabaseUrl = (prefix: string) => `${TEST_POSTGRES_URL}/dc_${prefix}_${process.pid}_${Date.now()}`;

/** Something a crash test opened: a client, a proxy, a queue, an SMTP sink. */
type Closable = { end(): Promise<void> } | { close(): Promise<unknown> };

/**
 * After a crash test: the processes still running stopped, what the test opened closed, its
 * database dropped and its data directory deleted, in that order.
 */
export async function cleanUpAfterCrash(left: {
  processes: ServiceProcess[];
  opened: Array<Closable | undefined>;
  databaseUrl?: string;
  dataDir?: string;
}): Promise<void> {
  for (const child of left.processes)
    if (child.child.exitCode === null && child.child.signalCode === null) await child.stop();
  for (const closable of left.opened) {
    if (closable) await ('end' in closable ? closable.end() : closable.close());
  }
  if (left.databaseUrl) await dropDatabase(left.databaseUrl);
  if (left.dataDir) await fs.rm(left.dataDir, { recursive: true, force: true });
}

export async function connectClient(databaseUrl: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  return client;
}

export interface HeldLock {
  /** Ends the test's transaction: whoever waited on the lock goes on. */
  release(): Promise<void>;
}

/**
 * Runs `statements` in a transaction of the test's own and keeps it open: a lock they take
 * (LOCK TABLE, SELECT … FOR UPDATE) stops a process at its next statement that needs it,
 * after everything before that statement happened.
 */
export async function holdLock(databaseUrl: string, ...statements: string[]): Promise<HeldLock & { rows: any[] }> {
  const client = await connectClient(databaseUrl);
  await client.query('BEGIN');
  let rows: any[] = [];
  for (const statement of statements) rows = (await client.query(statement)).rows;
  return {
    rows,
    async release() {
      await client.query('COMMIT').catch(() => undefined);
      await client.end();
    },
  };
}

/**
 * The backend pid of the session that waits for a lock while running a statement that
 * starts with `statement` (the process under test, stopped where the test wanted it).
 */
export async function waitForBlockedStatement(
  admin: pg.Client,
  statement: string,
  timeoutMs = 30_000,
): Promise<number> {
  return eventually(
    async () => {
      const { rows } = await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock' AND ltrim(query, E' \\n\\t\\r') LIKE $1 || '%'`,
        [statement],
      );
      return rows[0]?.pid;
    },
    timeoutMs,
    `a session blocked on a lock in "${statement}…"`,
  );
}

/**
 * Ends the session of a killed process that still waits for a lock. PostgreSQL notices a
 * client is gone only when it next reads from it; a session waiting for a lock would, once
 * the lock is released, first run the statement it received and, outside a transaction,
 * commit it: the crash would then not have happened where the test put it. The server does
 * the same by itself with client_connection_check_interval.
 */
export async function endOrphanedSession(admin: pg.Client, pid: number): Promise<void> {
  await admin.query('SELECT pg_terminate_backend($1)', [pid]);
  await eventually(
    async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0,
    30_000,
    `backend ${pid} to end`,
  );
}

/** What a write load did, in Jepsen's terms. */
export interface LoadHistory {
  /** Writes answered 2xx: committed. */
  committed: Set<string>;
  /** Writes with no answer (connection refused or cut, 5xx): committed or not, unknown. */
  indeterminate: Set<string>;
}

export interface WriteLoad extends LoadHistory {
  /** Resolves once this many writes more than now have committed. */
  waitForCommits(count: number, timeoutMs?: number): Promise<void>;
  /** Stops writing and waits for the writes in flight to end. */
  stop(): Promise<LoadHistory>;
}

/**
 * A steady load of writes, each under a unique key (a project's name, a defect's title)
 * that its event carries (`<prefix>-w<writer>-<number>`), so that a write can be found among
 * the handled events even when it never got an answer. While the target is down, writes fail
 * fast and are retried at a slower pace; each failed attempt is a write of its own (it may
 * have committed).
 */
export function startWriteLoad(options: {
  prefix: string;
  /** Sends the write with this key; resolves with the HTTP status, rejects when no answer came. */
  write(key: string): Promise<number>;
  concurrency?: number;
  pauseMs?: number;
}): WriteLoad {
  const committed = new Set<string>();
  const indeterminate = new Set<string>();
  const errors: string[] = [];
  let next = 0;
  let stopped = false;
  // A writer's writes follow one another: its keys' numbers rise in its commit order.
  const writer = async (_: unknown, index: number) => {
    while (!stopped) {
      const key = `${options.prefix}-w${index}-${(next += 1)}`;
      let pause = options.pauseMs ?? 20;
      try {
        const status = await options.write(key);
        if (status >= 200 && status < 300) committed.add(key);
        else if (status >= 500) indeterminate.add(key);
        else errors.push(`${key}: HTTP ${status}`); // refused: not committed, and a fault of the test
      } catch {
        indeterminate.add(key);
        pause = 200;
      }
      await new Promise((resolve) => setTimeout(resolve, pause)); // paces the load
    }
  };
  const writers = Array.from({ length: options.concurrency ?? 2 }, writer);
  return {
    committed,
    indeterminate,
    async waitForCommits(count, timeoutMs = 60_000) {
      const target = committed.size + count;
      await eventually(
        () => committed.size >= target,
        timeoutMs,
        `${count} more committed writes (${committed.size} so far; refused: ${errors.slice(0, 3).join(', ')})`,
      );
    },
    async stop() {
      stopped = true;
      await Promise.all(writers);
      if (errors.length > 0)
        throw new Error(`writes refused (a fault of the test's load): ${errors.slice(0, 5).join('; ')}`);
      return { committed, indeterminate };
    },
  };
}

/** The Jepsen total-queue verdict over a load's history and what was handled. */
export interface TotalQueueVerdict {
  /** Committed, never handled. */
  lost: string[];
  /** Handled, never written (neither committed nor indeterminate). */
  unexpected: string[];
  /** Keys whose effect happened more than once, with how many times. */
  duplicated: Array<[string, number]>;
}

/**
 * `effects`: how many times each key's effect happened (a key handled once counts 1).
 * Indeterminate writes may or may not show up; every other key must show up exactly once.
 */
export function totalQueue(history: LoadHistory, effects: Map<string, number>): TotalQueueVerdict {
  return {
    lost: [...history.committed].filter((key) => !effects.has(key)),
    unexpected: [...effects.keys()].filter((key) => !history.committed.has(key) && !history.indeterminate.has(key)),
    duplicated: [...effects].filter(([, times]) => times > 1),
  };
}

/** Counts each key (a handled event's key, once per time its effect happened). */
export function countKeys(keys: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/**
 * How many times each event was handled as new by `consumer` (its work committed, not
 * skipped as a duplicate by the inbox), from the consumer's debug line `event handled`
 * in the output of every process that ran it (a killed one's too). A duplicate delivery
 * logs `duplicate: true`; one the inbox failed to stop would log `duplicate: false` again.
 *
 * `handledBySurvivors`: events a process that was not killed is known to have handled as new
 * (a marker written after the crash): each must have its line, or the count says nothing (the
 * line's message or fields changed, LOG_LEVEL is not debug) and this throws instead of
 * returning a map in which every repeat would go unseen. pino writes asynchronously, so a
 * living process's line can come after the effect it logs: the outputs are read again until
 * every such line is there (10 s).
 */
export async function handlingsAsNew(
  readOutputs: () => string[],
  consumer: string,
  handledBySurvivors: string[],
): Promise<Map<string, number>> {
  let counts: Map<string, number> | undefined;
  await eventually(
    () => (counts = countHandlingsAsNew(readOutputs(), consumer, handledBySurvivors)),
    10_000,
    `the "event handled" lines of ${consumer}`,
  );
  return counts!;
}

function countHandlingsAsNew(outputs: string[], consumer: string, handledBySurvivors: string[]): Map<string, number> {
  if (handledBySurvivors.length === 0)
    throw new Error('handlingsAsNew needs at least one event a surviving process handled, to show its lines are there');
  const ids: string[] = [];
  for (const output of outputs) {
    for (const line of output.split('\n')) {
      if (!line.includes('"event handled"')) continue;
      let entry: { msg?: string; consumer?: string; event_id?: string; duplicate?: boolean };
      try {
        entry = JSON.parse(line);
      } catch {
        continue; // the last line of a killed process may be cut short
      }
      if (entry.msg === 'event handled' && entry.consumer === consumer && entry.duplicate === false && entry.event_id)
        ids.push(entry.event_id);
    }
  }
  const counts = countKeys(ids);
  const missing = handledBySurvivors.filter((id) => !counts.has(id));
  if (missing.length > 0) {
    throw new Error(
      `no "event handled" debug line with duplicate:false from ${consumer} for ${missing.join(', ')}, which a surviving process handled ` +
        `(${ids.length} such lines in all): the line or LOG_LEVEL changed, and repeated handlings cannot be counted`,
    );
  }
  return counts;
}

/**
 * The consumer-side sentinel: after the load stopped, one more write (`write` makes it), and
 * the wait until `recorded` finds it (returns its event id). The consumer takes its queue in
 * order, so a delivery requeued by the crash, or a copy sent again, sits ahead of the marker:
 * once the marker is handled, so is everything that could still come (until the next write).
 */
export async function writeMarker(
  what: string,
  write: () => Promise<void>,
  recorded: () => Promise<string | undefined>,
  timeoutMs = 60_000,
): Promise<string> {
  await write();
  return eventually(recorded, timeoutMs, `the marker ${what} handled`);
}

/**
 * Each recorded event's key with how many times its consumer handled it as new: a recorded
 * event counts at least once (the debug line of a killed process may never have been
 * written), more when the consumer's lines say so.
 */
export function effectsOf(
  recorded: Array<{ eventId: string; key: string }>,
  handlings: Map<string, number>,
): Map<string, number> {
  const effects = new Map<string, number>();
  for (const { eventId, key } of recorded)
    effects.set(key, (effects.get(key) ?? 0) + Math.max(1, handlings.get(eventId) ?? 0));
  return effects;
}

/** The event log's events of one type (PostgreSQL), each with the `data` field that carries the load's key. */
export async function recordedEvents(client: pg.Client, eventType: string, keyField: string) {
  const { rows } = await client.query<{ event_id: string; key: string }>(
    `SELECT event_id::text, data->>$2 AS key FROM event_log.events WHERE event_type = $1 ORDER BY seq`,
    [eventType, keyField],
  );
  return rows.map((row) => ({ eventId: row.event_id, key: row.key }));
}

/** Fails with the whole verdict when anything was lost, unexpected or repeated. */
export function assertTotalQueue(verdict: TotalQueueVerdict, history: LoadHistory, what: string): void {
  const clean = verdict.lost.length === 0 && verdict.unexpected.length === 0 && verdict.duplicated.length === 0;
  if (clean) return;
  throw new Error(
    `${what}: ${verdict.lost.length} lost ${JSON.stringify(verdict.lost.slice(0, 10))}, ` +
      `${verdict.unexpected.length} unexpected ${JSON.stringify(verdict.unexpected.slice(0, 10))}, ` +
      `${verdict.duplicated.length} with a repeated effect ${JSON.stringify(verdict.duplicated.slice(0, 10))} ` +
      `(of ${history.committed.size} committed and ${history.indeterminate.size} indeterminate writes)`,
  );
}

/** The pid of the local process whose TCP connection leaves from 127.0.0.1:`port` (ss, our own processes). */
export async function processOfLocalPort(port: number): Promise<number | undefined> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { stdout: output } = await promisify(execFile)('ss', ['-tnpH', 'state', 'established', 'sport', `= :${port}`]);
  const pid = /pid=(\d+)/.exec(output)?.[1];
  return pid === undefined ? undefined : Number(pid);
}
