import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { TestUser } from '../support/api-client.ts';
import { withBroker } from '../support/broker.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CONSUMER = 'defects.project-directory';

/** `npm run dlq -- …` as an operator runs it, with the services' configuration. */
async function dlq(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/dlq.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** What a broken publisher might send: not JSON, routed to the defects service's consumer. */
async function publishGarbage(count: number) {
  await withBroker(async (connection) => {
    const publisher = connection.createPublisher({ confirm: true });
    for (let index = 0; index < count; index += 1) {
      await publisher.send({ exchange: 'events', routingKey: 'project.created', durable: true }, Buffer.from(`garbage ${index}`));
    }
    await publisher.close();
  });
}

describe('dead letters: admin API and dlq command (RabbitMQ)', () => {
  let system: TestSystem;
  let admin: TestUser;
  let engineer: TestUser;
  const brokerEnv = () => ({ AMQP_URL: system.env.AMQP_URL, DATABASE_URL: system.env.DATABASE_URL });

  before(async () => {
    system = await startTestSystem({ mode: 'postgres' });
    admin = await system.api.createUser('admin');
    engineer = await system.api.createUser('engineer');
    await publishGarbage(3);
    await eventually(async () => {
      const response = await system.api.get(`/v1/admin/dead-letters?consumer=${CONSUMER}`, admin.token);
      return response.body.total === 3;
    }, 10_000, 'three parked messages');
  });
  after(async () => {
    await system?.close();
  });

  it('when an admin lists dead letters, then each shows consumer, reason, attempts and the body as received', async () => {
    const response = await system.api.get(`/v1/admin/dead-letters?consumer=${CONSUMER}`, admin.token);
    assert.equal(response.status, 200);
    assert.equal(response.body.items.length, 3);
    for (const item of response.body.items) {
      assert.equal(item.consumer, CONSUMER);
      assert.equal(item.reason, 'invalid_message');
      assert.equal(item.attempts, 1);
      assert.match(item.error, /not valid JSON/);
      assert.match(item.body, /^garbage \d$/);
    }
    const one = await system.api.get(`/v1/admin/dead-letters/${response.body.items[0].id}`, admin.token);
    assert.equal(one.status, 200);
    assert.equal(one.body.id, response.body.items[0].id);
  });

  it('when someone other than an admin asks, then it is forbidden; an unknown consumer or id is a clear 4xx', async () => {
    assert.equal((await system.api.get('/v1/admin/dead-letters', engineer.token)).status, 403);
    assert.equal((await system.api.get('/v1/admin/dead-letters')).status, 401);
    const unknownConsumer = await system.api.get('/v1/admin/dead-letters?consumer=nobody', admin.token);
    assert.equal(unknownConsumer.status, 422);
    assert.match(unknownConsumer.body.detail, /Unknown consumer 'nobody'/);
    const unknownId = await system.api.request('POST', '/v1/admin/dead-letters/no-such-id/replay', { token: admin.token });
    assert.equal(unknownId.status, 404);
  });

  it('the dlq command lists one line per message and purges one by id', async () => {
    const listed = await dlq(['list', '--consumer', CONSUMER], brokerEnv());
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    const [consumer, eventType, id, attempts, reason] = lines[0].split('\t');
    assert.deepEqual([consumer, eventType, attempts, reason], [CONSUMER, '-', 'attempts=1', 'invalid_message']);

    const shown = await dlq(['show', id], brokerEnv());
    assert.equal(shown.code, 0);
    assert.equal(JSON.parse(shown.stdout).id, id);

    const purged = await dlq(['purge', id, '--consumer', CONSUMER], brokerEnv());
    assert.equal(purged.stdout.trim(), 'purged 1');
    const after = await system.api.get(`/v1/admin/dead-letters?consumer=${CONSUMER}`, admin.token);
    assert.equal(after.body.total, 2);
    assert.ok(!after.body.items.some((item: any) => item.id === id));

    const usage = await dlq(['replay'], brokerEnv());
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage:/);
  });

  it('when all are replayed, then they go back to the consumer (and, still not events, are parked again)', async () => {
    const replayed = await system.api.request('POST', `/v1/admin/dead-letters/replay?consumer=${CONSUMER}`, { token: admin.token });
    assert.equal(replayed.status, 200);
    assert.equal(replayed.body.replayed, 2);
    await eventually(async () => (await system.api.get(`/v1/admin/dead-letters?consumer=${CONSUMER}`, admin.token)).body.total === 2, 10_000, 'parked again');
    const purged = await system.api.request('DELETE', `/v1/admin/dead-letters?consumer=${CONSUMER}`, { token: admin.token });
    assert.deepEqual(purged.body, { purged: 2 });
  });
});

describe('dead letters: dlq command in embedded mode', () => {
  it('when the embedded server is running, then the command refuses and points to the admin API', async () => {
    const system = await startTestSystem({ mode: 'embedded' });
    try {
      const result = await dlq(['list'], { DATA_DIR: system.env.DATA_DIR, PORT: system.env.PORT });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /in use by the running server/);
    } finally {
      await system.close({ keepData: true });
    }
    const stopped = await dlq(['list'], { DATA_DIR: system.env.DATA_DIR, PORT: system.env.PORT });
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout.trim(), 'no parked messages');
    await fs.rm(system.env.DATA_DIR, { recursive: true, force: true });
  });
});
