import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestUser } from '../support/api-client.ts';
import { bindTestQueue, withBroker, type TestQueue } from '../support/broker.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

describe('broker refuses the topology', () => {
  let system: TestSystem;
  let user: TestUser;
  let queue: TestQueue | undefined;

  before(async () => {
    // What the seed's consumer example leaves behind: `events` declared without durable=True.
    await withBroker(async (broker) => {
      await broker.exchangeDelete({ exchange: 'events' });
      await broker.exchangeDeclare({ exchange: 'events', type: 'topic', durable: false });
    });
    system = await startTestSystem({ mode: 'postgres' });
    user = await system.api.createUser('manager');
  });
  after(async () => {
    await queue?.close();
    await system?.close();
    // Leave the broker as every other test expects it: a durable `events`.
    await withBroker(async (broker) => {
      await broker.exchangeDelete({ exchange: 'events' });
      await broker.exchangeDeclare({ exchange: 'events', type: 'topic', durable: true });
    });
  });

  it('when `events` exists as a non-durable exchange, then writes still succeed and readiness and the log say what is wrong and how to fix it', async () => {
    const created = await system.api.post('/v1/projects', { name: 'Мост через реку' }, user.token);
    assert.equal(created.status, 201);

    const readiness = await eventually(async () => {
      const response = await system.api.get('/readyz');
      const broker = response.body.checks?.find((check: any) => check.name === 'broker');
      return response.status === 503 && /durable/.test(broker?.detail ?? '') ? broker : undefined;
    }, 10_000, 'readiness to name the refused topology');
    assert.equal(readiness.ok, false);
    assert.match(readiness.detail, /PRECONDITION_FAILED/);
    assert.match(readiness.detail, /delete/);
    const logged = await eventually(() => system.logs.lines.find((line) => line.level >= 50 && /PRECONDITION_FAILED/.test(line.msg)));
    assert.match(logged.msg, /must be a durable topic exchange/);
    assert.match(logged.msg, /delete/);
  });

  it('when the operator deletes the wrong exchange, then the service recovers by itself and publishes what waited', async () => {
    await withBroker(async (broker) => broker.exchangeDelete({ exchange: 'events' }));
    queue = await bindTestQueue(['project.*']);
    const second = await system.api.post('/v1/projects', { name: 'Тоннель' }, user.token);
    assert.equal(second.status, 201);
    const tunnel = await eventually(
      () => queue!.messages.find((message) => (message.body as any).data.name === 'Тоннель'),
      15_000,
      'the new event on the recreated exchange',
    );
    assert.equal(tunnel.routingKey, 'project.created');
    await eventually(async () => (await system.api.get('/readyz')).status === 200, 10_000, 'readiness to recover');
    const { rows } = await system.host.db.query<{ pending: number }>('SELECT count(*)::int AS pending FROM projects.outbox');
    assert.equal(rows[0].pending, 0, 'the event that waited was published too');
  });
});
