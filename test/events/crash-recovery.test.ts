import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiClient } from '../support/api-client.ts';
import { bindTestQueue, deleteQueues, type TestQueue } from '../support/broker.ts';
import { amqpUrlThroughPort, SERVICE_QUEUES, TEST_AMQP_URL, TEST_POSTGRES_URL } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess } from '../support/processes.ts';
import pg from 'pg';

describe('crash between commit and publish', () => {
  const databaseUrl = `${TEST_POSTGRES_URL}/dc_crash_${process.pid}_${Date.now()}`;
  let queue: TestQueue;

  before(async () => {
    await deleteQueues(SERVICE_QUEUES);
    queue = await bindTestQueue(['project.*', 'defect.*']);
  });
  after(async () => {
    await queue?.close();
    const admin = new pg.Client({ connectionString: `${TEST_POSTGRES_URL}/postgres` });
    await admin.connect();
    await admin.query(
      `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(new URL(databaseUrl).pathname.slice(1))} WITH (FORCE)`,
    );
    await admin.end();
  });

  it('when the process is killed after its writes committed but before they were published, then the events go out after restart, once, in order', async () => {
    const env = {
      DATABASE_URL: databaseUrl,
      DEMO_USER: 'testuser:123456',
      LOG_LEVEL: 'info',
      DATA_DIR: `/tmp/dc-crash-${process.pid}`,
    };
    // A broker address where nothing listens: every commit stays in the outbox.
    const deadBroker = amqpUrlThroughPort(await freePort());
    const first = await startProcess('src/main.ts', { ...env, AMQP_URL: deadBroker }, await freePort());
    const api = createApiClient(first.url);
    const token = await api.login('testuser', '123456');
    assert.equal((await api.post('/v1/projects', { name: 'Склад' }, token)).status, 201);
    assert.equal((await api.post('/v1/defects', { project_id: 1, title: 'Протечка кровли' }, token)).status, 201);
    assert.equal(
      (await api.put('/v1/defects/1', { title: 'Протечка кровли', status: 'В работе', priority: 'Высокий' }, token))
        .status,
      200,
    );
    await first.kill();
    assert.equal(queue.messages.length, 0);

    const second = await startProcess('src/main.ts', { ...env, AMQP_URL: TEST_AMQP_URL }, await freePort());
    try {
      await queue.waitFor(4, 15_000);
      // Once the outboxes are empty nothing is left to publish (again), and a marker shows
      // that everything published has arrived.
      const db = new pg.Pool({ connectionString: databaseUrl, max: 1 });
      try {
        await queue.settle(db);
      } finally {
        await db.end();
      }
      // Each service's relay publishes its own events in commit order; the two relays race.
      const ofService = (prefix: string) =>
        queue.messages.map((m) => m.routingKey).filter((key) => key.startsWith(prefix));
      assert.equal(queue.messages.length, 4);
      assert.deepEqual(ofService('project.'), ['project.created']);
      assert.deepEqual(ofService('defect.'), ['defect.created', 'defect.status_changed', 'defect.updated']);
      assert.match(second.output(), /\[EVENT\] defect\.status_changed \| ID: /);
    } finally {
      await second.stop();
    }
  });
});
