import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { createApiClient } from '../support/api-client.ts';
import {
  bindTestQueue,
  deleteQueues,
  startStallableTcpProxy,
  type StallableTcpProxy,
  type TestQueue,
} from '../support/broker.ts';
import {
  connectClient,
  countKeys,
  dropDatabase,
  freshDatabaseUrl,
  startWriteLoad,
  totalQueue,
} from '../support/crash-harness.ts';
import { SERVICE_QUEUES, amqpUrlThroughPort, testBrokerAddress } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { eventually } from '../support/test-system.ts';

const nameOf = (message: { body: unknown }) => (message.body as { data: { name: string } }).data.name;
const sequenceOf = (name: string) => Number(name.split('-').at(-1));

interface ReadyCheck {
  name: string;
  ok: boolean;
  detail: string;
}

describe('stuck broker: connected, never confirming', () => {
  const databaseUrl = freshDatabaseUrl('stuck_broker');
  let dataDir: string;
  let queue: TestQueue;
  let proxy: StallableTcpProxy;
  let system: ServiceProcess | undefined;
  let admin: pg.Client | undefined;

  before(async () => {
    await deleteQueues(SERVICE_QUEUES);
    queue = await bindTestQueue(['project.created']);
    proxy = await startStallableTcpProxy(testBrokerAddress());
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-stuck-broker-'));
  });
  after(async () => {
    // A graceful stop, or a kill if the shutdown hangs on a connection the stall left behind.
    if (system)
      await Promise.race([
        system.stop(),
        new Promise((resolve) => setTimeout(resolve, 20_000)).then(() => system!.kill()),
      ]);
    await admin?.end();
    await proxy?.close();
    await queue?.close();
    await dropDatabase(databaseUrl);
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('when the broker stops confirming, then each batch fails after EVENTS_CONFIRM_TIMEOUT, /readyz names the stuck relay, and once it confirms again every event is published, in order (once, but for a batch in flight at the stall)', async () => {
    system = await startProcess(
      'src/main.ts',
      {
        DATABASE_URL: databaseUrl,
        AMQP_URL: amqpUrlThroughPort(proxy.port),
        DATA_DIR: dataDir,
        DEMO_USER: 'testuser:123456',
        EVENTS_CONFIRM_TIMEOUT: '2s',
      },
      await freePort(),
    );
    admin = await connectClient(databaseUrl);
    const api = createApiClient(system.url);
    const token = await api.login('testuser', '123456');
    // One writer: each write commits after the one before, so commit order is key order.
    const load = startWriteLoad({
      prefix: 'stuck',
      concurrency: 1,
      pauseMs: 50,
      write: async (name) => (await api.post('/v1/projects', { name }, token)).status,
    });
    await load.waitForCommits(5);
    await eventually(() => queue.messages.length >= 5, 30_000, 'the first writes published');

    proxy.stall('both');
    const stalledAt = Date.now();
    // What the relay may have sent and not had confirmed: the rows still waiting. A batch that
    // reached the broker just before the stall, its confirm lost, goes out again afterwards
    // (at least once); no other event may.
    const unconfirmedAtStall = new Set(
      (await admin.query<{ name: string }>(`SELECT body::json->'data'->>'name' AS name FROM projects.outbox`)).rows.map(
        (row) => row.name,
      ),
    );
    const readiness = async () => {
      const response = await api.get('/readyz');
      return {
        status: response.status,
        relay: (response.body.checks as ReadyCheck[]).find((check) => check.name === 'outbox-relay:projects'),
      };
    };
    const stuck = await eventually(
      async () => {
        const ready = await readiness();
        return ready.status === 503 && ready.relay && !ready.relay.ok ? ready : undefined;
      },
      60_000,
      '/readyz to report the projects relay failing',
    );
    assert.match(
      stuck.relay!.detail,
      /outbox projects: publishing failing: the broker's confirm timed out after 2000 ms/,
    );
    assert.ok(Date.now() - stalledAt >= 2_000, 'not before the confirm timeout');
    assert.match(system.output(), /outbox relay could not publish; events stay in the outbox/);
    await load.waitForCommits(5);
    const waiting = (await admin.query('SELECT count(*)::int AS n FROM projects.outbox')).rows[0].n;
    assert.ok(waiting >= 5, `the writes made during the stall wait in the outbox (${waiting})`);
    const publishedWhileStalled = queue.messages.length;

    proxy.resume();
    await eventually(async () => (await readiness()).status === 200, 60_000, '/readyz ready again');
    assert.ok(queue.messages.length > publishedWhileStalled, 'what waited went out');
    await load.waitForCommits(5);
    const history = await load.stop();
    // Broker-side sentinel: the outboxes empty (every event confirmed), then a marker through the test's queue.
    await queue.settle(admin, 60_000);

    const published = queue.messages.map(nameOf);
    const { lost, unexpected, duplicated } = totalQueue(history, countKeys(published));
    assert.deepEqual({ lost, unexpected }, { lost: [], unexpected: [] }, 'project.created on the broker');
    for (const [name, times] of duplicated) {
      assert.ok(unconfirmedAtStall.has(name) && times === 2, `${name} published ${times} times`);
    }
    // In commit order: the first copies, and the copies sent again.
    const firsts = published.filter((name, index) => published.indexOf(name) === index).map(sequenceOf);
    const again = published.filter((name, index) => published.indexOf(name) !== index).map(sequenceOf);
    for (const [copies, which] of [
      [firsts, 'first copies'],
      [again, 'copies sent again'],
    ] as const) {
      assert.deepEqual(
        copies,
        [...copies].sort((a, b) => a - b),
        `${which} in commit order`,
      );
    }
  });
});
