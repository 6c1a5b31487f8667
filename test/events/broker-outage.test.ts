import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestUser } from '../support/api-client.ts';
import { bindTestQueue, startTcpProxy, type TcpProxy, type TestQueue } from '../support/broker.ts';
import { amqpUrlThroughPort, testBrokerAddress } from '../support/environment.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

describe('broker outage', () => {
  let proxy: TcpProxy;
  let system: TestSystem;
  let queue: TestQueue;
  let user: TestUser;

  before(async () => {
    proxy = await startTcpProxy(testBrokerAddress());
    system = await startTestSystem({ mode: 'postgres', env: { AMQP_URL: amqpUrlThroughPort(proxy.port) } });
    queue = await bindTestQueue(['project.*', 'defect.*']);
    user = await system.api.createUser('manager');
  });
  after(async () => {
    await queue?.close();
    await system?.close();
    await proxy?.close();
  });

  it('when RabbitMQ refuses connections during a batch of writes, then writes succeed and every event arrives once, in order, after it is back', async () => {
    const { api } = system;
    assert.equal((await api.post('/v1/projects', { name: 'До аварии' }, user.token)).status, 201);
    await queue.waitFor(1);
    // Its arrival is not enough: the relay must also have had the confirm and deleted the row,
    // or the outage makes it publish the event again afterwards (at least once, as designed).
    await queue.settle(system.host.db);

    await proxy.stop();
    const ready = await eventually(
      async () => {
        const response = await api.get('/readyz');
        return response.status === 503 ? response.body : undefined;
      },
      10_000,
      'readiness to report the broker down',
    );
    assert.equal(ready.checks.find((check: any) => check.name === 'broker').ok, false);

    const expected: Array<[string, number]> = [];
    for (let i = 1; i <= 10; i += 1) {
      const defect = await api.post('/v1/defects', { project_id: 1, title: `Дефект ${i}` }, user.token);
      assert.equal(defect.status, 201);
      expected.push(['defect.created', defect.body.id]);
      const moved = await api.patch(`/v1/defects/${defect.body.id}`, { status: 'В работе' }, user.token);
      assert.equal(moved.status, 200);
      expected.push(['defect.status_changed', defect.body.id], ['defect.updated', defect.body.id]);
    }
    assert.equal(queue.messages.length, 1, 'nothing got through while the broker was unreachable');

    await proxy.start();
    await queue.waitFor(1 + expected.length, 20_000);
    // A batch whose confirm was lost in the outage is published again while its rows remain:
    // with the outboxes empty nothing is, and a marker shows what was published has arrived.
    await queue.settle(system.host.db);

    const after = queue.messages.slice(1).map((m) => [m.routingKey, m.body.data.defect_id]);
    assert.deepEqual(after, expected, 'all events, in commit order');
    const ids = queue.messages.map((m) => m.messageId);
    assert.equal(new Set(ids).size, ids.length, 'none twice');
    await eventually(async () => (await api.get('/readyz')).status === 200, 10_000, 'readiness to recover');
  });
});
