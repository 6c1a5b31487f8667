import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { createApiClient } from '../support/api-client.ts';
import { bindTestQueue, deleteQueues, type TestQueue } from '../support/broker.ts';
import {
  assertTotalQueue,
  connectClient,
  countKeys,
  dropDatabase,
  endOrphanedSession,
  freshDatabaseUrl,
  holdLock,
  processOfLocalPort,
  startWriteLoad,
  totalQueue,
  waitForBlockedStatement,
  waitUntil,
} from '../support/crash-harness.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';

const nameOf = (message: { body: unknown }) => (message.body as { data: { name: string } }).data.name;

describe('crash: a second replica\'s relay takes over from a killed one', () => {
  const databaseUrl = freshDatabaseUrl('relay_takeover');
  const processes: ServiceProcess[] = [];
  let dataDir: string;
  let queue: TestQueue;
  let admin: pg.Client | undefined;

  before(async () => {
    await deleteQueues(SERVICE_QUEUES);
    queue = await bindTestQueue(['project.created']);
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-relay-takeover-'));
  });
  after(async () => {
    for (const child of processes) if (child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    await admin?.end();
    await queue?.close();
    await dropDatabase(databaseUrl);
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('when the replica whose relay holds the lock is killed with events waiting, then the other replica publishes them, each once, in commit order', async () => {
    const env = { DATABASE_URL: databaseUrl, AMQP_URL: TEST_AMQP_URL, DATA_DIR: dataDir, LOG_LEVEL: 'info' };
    const authPort = await freePort();
    const auth = await startProcess('src/services/auth/main.ts', { ...env, DEMO_USER: 'testuser:123456' }, authPort);
    processes.push(auth);
    const replicaEnv = { ...env, AUTH_URL: auth.url };
    const replicas = await Promise.all([
      startProcess('src/services/projects/main.ts', replicaEnv, await freePort()),
      startProcess('src/services/projects/main.ts', replicaEnv, await freePort()),
    ]);
    processes.push(...replicas);
    admin = await connectClient(databaseUrl);
    const token = await createApiClient(auth.url).login('testuser', '123456');
    const clients = replicas.map((replica) => createApiClient(replica.url));
    let turn = 0;
    const load = startWriteLoad({
      prefix: 'takeover',
      // Alternating between the replicas; a write to the killed one is indeterminate (no answer).
      write: async (name) => (await clients[(turn += 1) % 2].post('/v1/projects', { name }, token)).status,
    });
    await load.waitForCommits(10);

    // Events pile up while the test holds the relays' lock; then the outbox is locked so that the
    // relay that takes the lock next stops at its first read, holding the lock, nothing in flight.
    await admin.query("SELECT pg_advisory_lock(hashtext('outbox-relay:projects'))");
    await waitUntil('events waiting in the outbox', async () => (await admin!.query('SELECT count(*)::int AS n FROM projects.outbox')).rows[0].n >= 20);
    const tableLock = await holdLock(databaseUrl, 'LOCK TABLE projects.outbox IN ACCESS EXCLUSIVE MODE');
    await admin.query("SELECT pg_advisory_unlock(hashtext('outbox-relay:projects'))");
    const reader = await waitForBlockedStatement(admin, 'SELECT next.*');
    const { rows } = await admin.query<{ client_port: number }>('SELECT client_port FROM pg_stat_activity WHERE pid = $1', [reader]);
    const holderPid = await processOfLocalPort(rows[0].client_port);
    const holder = replicas.find((replica) => replica.child.pid === holderPid);
    assert.ok(holder, `the relay's session ${reader} belongs to a replica (process ${holderPid})`);
    const survivor = replicas.find((replica) => replica !== holder)!;
    const publishedBefore = queue.messages.length;

    await holder.kill();
    await endOrphanedSession(admin, reader); // its advisory lock goes with the session, as when the server notices the crash
    await tableLock.release();

    await waitUntil('the outbox emptied by the surviving replica', async () => (await admin!.query('SELECT count(*)::int AS n FROM projects.outbox')).rows[0].n === 0, 60_000);
    assert.ok(queue.messages.length > publishedBefore, 'the survivor published what was left');
    assert.match(survivor.output(), /\[EVENT\] project\.created/);
    await load.waitForCommits(10);
    const history = await load.stop();
    await waitUntil('the outbox empty', async () => (await admin!.query('SELECT count(*)::int AS n FROM projects.outbox')).rows[0].n === 0, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // a second copy would have arrived by now

    const published = queue.messages.map(nameOf);
    assertTotalQueue(totalQueue(history, countKeys(published)), history, 'project.created on the broker');
    // Each writer's writes commit one after the other: its keys must come out in that order.
    for (const writer of ['w0', 'w1']) {
      const numbers = published.filter((name) => name.includes(`-${writer}-`)).map((name) => Number(name.split('-').at(-1)));
      assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), `writer ${writer}'s events in commit order`);
    }
  });
});
