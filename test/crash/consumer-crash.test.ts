import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type pg from 'pg';
import { createApiClient } from '../support/api-client.ts';
import { deleteQueues, startStallableTcpProxy, type StallableTcpProxy } from '../support/broker.ts';
import {
  assertTotalQueue,
  connectClient,
  dropDatabase,
  effectsOf,
  freshDatabaseUrl,
  handlingsAsNew,
  holdLock,
  recordedEvents,
  startWriteLoad,
  totalQueue,
  waitForBlockedStatement,
  waitUntil,
  type WriteLoad,
} from '../support/crash-harness.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL, amqpUrlThroughPort, testBrokerAddress } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';

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
    for (const child of recorders) if (child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    recorders = [];
  };

  const startEventLog = async () => {
    // debug: the consumer's `event handled` lines say which deliveries it handled as new.
    const started = await startProcess('src/services/event-log/main.ts', { ...env, AMQP_URL: amqpUrlThroughPort(proxy.port), LOG_LEVEL: 'debug' }, await freePort());
    processes.push(started);
    recorders.push(started);
    return started;
  };
  const startLoad = (prefix: string) => {
    const api = createApiClient(projectsUrl);
    return startWriteLoad({ prefix, write: async (name) => (await api.post('/v1/projects', { name }, token)).status });
  };
  const recordedCount = async () => (await admin.query('SELECT count(*)::int AS n FROM event_log.events')).rows[0].n as number;

  /** Every committed write of the load recorded once, none unexpected (only this load's keys). */
  const checkTotalQueue = async (load: WriteLoad, prefix: string, what: string) => {
    const history = await load.stop();
    await waitUntil('every committed project in the event log', async () => {
      const recorded = new Set((await recordedEvents(admin, 'project.created', 'name')).map((event) => event.key));
      return [...history.committed].every((name) => recorded.has(name));
    }, 30_000).catch(() => undefined); // the verdict below names what is missing
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // a repeated handling would be logged by now
    const recorded = (await recordedEvents(admin, 'project.created', 'name')).filter((event) => event.key.startsWith(`${prefix}-`));
    const handlings = handlingsAsNew(recorders.map((child) => child.output()), RECORDER);
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
  after(async () => {
    for (const child of processes) if (child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    await admin?.end();
    await proxy?.close();
    await dropDatabase(databaseUrl);
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('when it is killed inside its handler\'s transaction under a write load, then after restart every committed change is recorded once', async () => {
    const first = await startEventLog();
    const load = startLoad('mid-transaction');
    await load.waitForCommits(10);
    await waitUntil('the first events recorded', async () => (await recordedCount()) >= 5);

    // Its reads go on, its INSERT waits: the batch's inbox claim is made, nothing is committed.
    const tableLock = await holdLock(databaseUrl, 'LOCK TABLE event_log.events IN EXCLUSIVE MODE');
    await waitForBlockedStatement(admin, 'INSERT INTO event_log.events');
    await load.waitForCommits(5); // more events delivered to it and not acknowledged meanwhile
    await first.kill();
    // The session runs the INSERT it had received, then finds its client gone and rolls back.
    await tableLock.release();

    await startEventLog();
    await load.waitForCommits(10);
    await checkTotalQueue(load, 'mid-transaction', `${RECORDER} killed inside its transaction`);
  });

  it('when it is killed after its transaction committed and before the broker had its ack, then the redelivered events are duplicates and every committed change is recorded once', async () => {
    await startEventLog();
    const load = startLoad('after-commit');
    await load.waitForCommits(10);
    await waitUntil('the first events recorded', async () => (await recordedCount()) >= 5);

    // Deliveries still reach the consumer; its acks (and delivery reports) never reach the broker.
    proxy.stall('to-broker');
    const before = await admin.query<{ event_id: string }>('SELECT event_id::text FROM event_log.events');
    const seen = new Set(before.rows.map((row) => row.event_id));
    const committedUnacked = await waitUntil('events recorded while no ack can reach the broker', async () => {
      const { rows } = await admin.query<{ event_id: string }>(`SELECT event_id::text FROM event_log.events WHERE event_type = 'project.created'`);
      const fresh = rows.map((row) => row.event_id).filter((id) => !seen.has(id));
      return fresh.length >= 5 ? fresh : undefined;
    }, 60_000);
    await recorders[0].kill();
    proxy.resume();

    const second = await startEventLog();
    await load.waitForCommits(10);
    const handlings = await checkTotalQueue(load, 'after-commit', `${RECORDER} killed between commit and ack`);
    // The crash fell where it should: those deliveries came back and the inbox skipped them.
    const duplicates = second.output().split('\n').filter((line) => line.includes('"event handled"') && line.includes('"duplicate":true'));
    for (const id of committedUnacked) {
      assert.equal(handlings.get(id), 1, `event ${id} handled as new once`);
      assert.ok(duplicates.some((line) => line.includes(id)), `event ${id} delivered again after the restart, as a duplicate`);
    }
  });
});
