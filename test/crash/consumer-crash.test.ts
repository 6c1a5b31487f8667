import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type pg from 'pg';
import { createApiClient } from '../support/api-client.ts';
import { bindTestQueue, deleteQueues, startStallableTcpProxy, type StallableTcpProxy } from '../support/broker.ts';
import {
  assertTotalQueue,
  connectClient,
  effectsOf,
  freshDatabaseUrl,
  handlingsAsNew,
  holdLock,
  recordedEvents,
  startWriteLoad,
  totalQueue,
  waitForBlockedStatement,
  writeMarker,
  type WriteLoad,
  cleanUpAfterCrash,
} from '../support/crash-harness.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL, amqpUrlThroughPort, testBrokerAddress } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { eventually } from '../support/test-system.ts';

const RECORDER = 'event-log.recorder';

// Auth and projects publish straight to the broker; the consumer under test, the event log,
// runs in a process of its own (reaching the broker through a proxy the test can stall), so
// that killing it kills a consumer and nothing else.

describe('crash: a consumer killed with events in hand (event log, PostgreSQL, RabbitMQ)', () => {
  const databaseUrl = freshDatabaseUrl('consumer_crash');
  const processes: ServiceProcess[] = [];
  let dataDir: string;
  let proxy: StallableTcpProxy;
  let admin: pg.Client;
  let env: Record<string, string>;
  let projectsUrl: string;
  let token: string;
  /** The event-log processes of the running test, the killed one first. */
  let recorders: ServiceProcess[] = [];
  /** Each test starts with no event-log process of the one before. */
  const stopRecorders = async () => {
    for (const child of recorders)
      if (child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    recorders = [];
  };

  const startEventLog = async () => {
    // debug: the consumer's `event handled` lines say which deliveries it handled as new.
    const started = await startProcess(
      'src/services/event-log/main.ts',
      { ...env, AMQP_URL: amqpUrlThroughPort(proxy.port), LOG_LEVEL: 'debug' },
      await freePort(),
    );
    processes.push(started);
    recorders.push(started);
    return started;
  };
  const startLoad = (prefix: string) => {
    const api = createApiClient(projectsUrl);
    return startWriteLoad({ prefix, write: async (name) => (await api.post('/v1/projects', { name }, token)).status });
  };
  const recordedCount = async () =>
    (await admin.query('SELECT count(*)::int AS n FROM event_log.events')).rows[0].n as number;

  /** Every committed write of the load recorded once, none unexpected (only this load's keys). */
  const checkTotalQueue = async (load: WriteLoad, prefix: string, what: string) => {
    const history = await load.stop();
    // Consumer-side sentinel: one more project once the load stopped; a delivery the crash
    // left unacknowledged (requeued) sits ahead of it in the recorder's queue.
    const marker = `marker-${prefix}`;
    const api = createApiClient(projectsUrl);
    const markerEventId = await writeMarker(
      'project (event log)',
      async () => assert.equal((await api.post('/v1/projects', { name: marker }, token)).status, 201),
      async () =>
        (await recordedEvents(admin, 'project.created', 'name')).find((event) => event.key === marker)?.eventId,
    );
    const recorded = (await recordedEvents(admin, 'project.created', 'name')).filter((event) =>
      event.key.startsWith(`${prefix}-`),
    );
    const handlings = await handlingsAsNew(() => recorders.map((child) => child.output()), RECORDER, [markerEventId]);
    assertTotalQueue(totalQueue(history, effectsOf(recorded, handlings)), history, what);
    return handlings;
  };

  before(async () => {
    await deleteQueues(SERVICE_QUEUES);
    proxy = await startStallableTcpProxy(testBrokerAddress());
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-consumer-crash-'));
    env = { DATABASE_URL: databaseUrl, AMQP_URL: TEST_AMQP_URL, DATA_DIR: dataDir, LOG_LEVEL: 'info' };
    const [authPort, projectsPort] = [await freePort(), await freePort()];
    const authUrl = `http://127.0.0.1:${authPort}`;
    env.AUTH_URL = authUrl;
    processes.push(await startProcess('src/services/auth/main.ts', { ...env, DEMO_USER: 'testuser:123456' }, authPort));
    const projects = await startProcess('src/services/projects/main.ts', env, projectsPort);
    processes.push(projects);
    projectsUrl = projects.url;
    admin = await connectClient(databaseUrl);
    token = await createApiClient(authUrl).login('testuser', '123456');
  });
  afterEach(stopRecorders);
  after(() => cleanUpAfterCrash({ processes, opened: [admin, proxy], databaseUrl, dataDir }));

  it("when it is killed inside its handler's transaction under a write load, then after restart every committed change is recorded once", async () => {
    const first = await startEventLog();
    // The events in the order the broker routed them (the recorder's queue has the same order).
    const routed = await bindTestQueue(['#']);
    const load = startLoad('mid-transaction');
    await load.waitForCommits(10);
    await eventually(async () => (await recordedCount()) >= 5, 30_000, 'the first events recorded');

    // Its reads go on, its INSERT waits: the batch's inbox claim is made, nothing is committed.
    const tableLock = await holdLock(databaseUrl, 'LOCK TABLE event_log.events IN EXCLUSIVE MODE');
    await waitForBlockedStatement(admin, 'INSERT INTO event_log.events');
    // The recorder takes its queue in order, a batch at a time: the first routed event not yet
    // recorded is in the batch blocked on the INSERT.
    const recordedAtBlock = new Set(
      (await admin.query<{ event_id: string }>('SELECT event_id::text FROM event_log.events')).rows.map(
        (row) => row.event_id,
      ),
    );
    await routed.drain(); // the blocked batch's events were routed before the recorder got them
    const blockedEventId = routed.messages
      .map((message) => (message.body as { event_id: string }).event_id)
      .find((id) => !recordedAtBlock.has(id));
    await routed.close();
    assert.ok(blockedEventId, 'an event routed and not yet recorded (the blocked batch)');
    await load.waitForCommits(5); // more events delivered to it and not acknowledged meanwhile
    await first.kill();
    // The session runs the INSERT it had received, then finds its client gone and rolls back.
    await tableLock.release();

    const second = await startEventLog();
    await load.waitForCommits(10);
    const handlings = await checkTotalQueue(load, 'mid-transaction', `${RECORDER} killed inside its transaction`);
    // The crash fell in its window: the blocked batch never committed, the restarted process handled it as new.
    assert.equal(handlings.get(blockedEventId), 1, `the blocked event ${blockedEventId} handled as new once`);
    assert.ok(
      (await handlingsAsNew(() => [second.output()], RECORDER, [blockedEventId])).has(blockedEventId),
      'by the restarted process',
    );
  });

  it('when it is killed after its transaction committed and before the broker had its ack, then the redelivered events are duplicates and every committed change is recorded once', async () => {
    await startEventLog();
    const load = startLoad('after-commit');
    await load.waitForCommits(10);
    await eventually(async () => (await recordedCount()) >= 5, 30_000, 'the first events recorded');

    // Deliveries still reach the consumer; its acks (and delivery reports) never reach the broker.
    proxy.stall('to-broker');
    const before = await admin.query<{ event_id: string }>('SELECT event_id::text FROM event_log.events');
    const seen = new Set(before.rows.map((row) => row.event_id));
    const committedUnacked = await eventually(
      async () => {
        const { rows } = await admin.query<{ event_id: string }>(
          `SELECT event_id::text FROM event_log.events WHERE event_type = 'project.created'`,
        );
        const fresh = rows.map((row) => row.event_id).filter((id) => !seen.has(id));
        return fresh.length >= 5 ? fresh : undefined;
      },
      60_000,
      'events recorded while no ack can reach the broker',
    );
    await recorders[0].kill();
    proxy.resume();

    const second = await startEventLog();
    await load.waitForCommits(10);
    const handlings = await checkTotalQueue(load, 'after-commit', `${RECORDER} killed between commit and ack`);
    // The crash fell where it should: those deliveries came back and the inbox skipped them.
    // (The killed process's own last log lines may never have been written: pino writes
    // asynchronously. Its handling shows in the table.) The restarted process handled the
    // marker after them (they were requeued ahead of it) and its lines are in order, so each
    // line of theirs is there once the marker's is.
    const restarted = handlingFlags(second.output());
    for (const id of committedUnacked) {
      assert.ok((handlings.get(id) ?? 0) <= 1, `event ${id} handled as new at most once`);
      assert.deepEqual(
        restarted.get(id),
        [true],
        `event ${id} delivered again after the restart and skipped as a duplicate (true = duplicate)`,
      );
    }
  });
});

/** Each event id's `duplicate` flags in a process's "event handled" lines, in order. */
function handlingFlags(output: string): Map<string, boolean[]> {
  const flags = new Map<string, boolean[]>();
  for (const line of output.split('\n')) {
    if (!line.includes('"event handled"')) continue;
    let entry: { consumer?: string; event_id?: string; duplicate?: boolean };
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // the last line may still be arriving
    }
    if (entry.consumer !== RECORDER || !entry.event_id) continue;
    flags.set(entry.event_id, [...(flags.get(entry.event_id) ?? []), entry.duplicate === true]);
  }
  return flags;
}
