import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AsyncMessage } from 'rabbitmq-client';
import type { TestUser } from '../support/api-client.ts';
import { bindTestQueue, type TestQueue } from '../support/broker.ts';
import { startTestSystem, type TestSystem } from '../support/test-system.ts';

/** The seed's table, "СПИСОК ВСЕХ СОБЫТИЙ": every type with exactly these data fields. */
const CONTRACT: Record<string, Record<string, 'integer' | 'string'>> = {
  'project.created': { project_id: 'integer', name: 'string', owner_id: 'integer' },
  'project.updated': { project_id: 'integer', name: 'string', updated_by: 'integer' },
  'project.deleted': { project_id: 'integer', deleted_by: 'integer' },
  'defect.created': {
    defect_id: 'integer',
    title: 'string',
    status: 'string',
    priority: 'string',
    project_id: 'integer',
    reporter_id: 'integer',
  },
  'defect.updated': { defect_id: 'integer', title: 'string', updated_by: 'integer' },
  'defect.status_changed': { defect_id: 'integer', old_status: 'string', new_status: 'string', changed_by: 'integer' },
  'defect.deleted': { defect_id: 'integer', deleted_by: 'integer' },
};

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;

describe('event contract on RabbitMQ', () => {
  let system: TestSystem;
  let queue: TestQueue;
  let owner: TestUser;
  const requestIds: string[] = [];
  let started: number;

  before(async () => {
    system = await startTestSystem({ mode: 'postgres' });
    owner = await system.api.createUser('manager');
    queue = await bindTestQueue(['project.*', 'defect.*']);
    started = Date.now();

    const { api } = system;
    const calls: Array<() => ReturnType<typeof api.request>> = [
      () => api.post('/v1/projects', { name: 'Строительство моста', description: 'Пролёт 3' }, owner.token),
      () => api.put('/v1/projects/1', { name: 'Строительство моста (этап 2)' }, owner.token),
      () => api.post('/v1/defects', { project_id: 1, title: 'Трещина в опоре', priority: 'Критический' }, owner.token),
      () =>
        api.put(
          '/v1/defects/1',
          { title: 'Трещина в опоре', status: 'В работе', priority: 'Критический' },
          owner.token,
        ),
      () => api.patch('/v1/defects/1', { title: 'Трещина в опоре №2' }, owner.token),
      () => api.delete('/v1/defects/1', owner.token),
      () => api.delete('/v1/projects/1', owner.token),
    ];
    for (const call of calls) {
      const response = await call();
      assert.ok(response.status < 300, `${response.status} ${JSON.stringify(response.body)}`);
      requestIds.push(response.headers.get('x-request-id')!);
    }
    // Failed requests in between publish nothing.
    assert.equal((await api.post('/v1/defects', { project_id: 999, title: 'Нет проекта' }, owner.token)).status, 404);
    assert.equal((await api.post('/v1/projects', { name: '' }, owner.token)).status, 422);
    await queue.waitFor(8);
    // Anything extra would be in an outbox still, or in the queue before a marker sent now.
    await queue.settle(system.host.db);
  });
  after(async () => {
    await queue?.close();
    await system?.close();
  });

  // Each service publishes its own events in commit order; two services' events may interleave.
  const ofService = (prefix: string) => queue.messages.filter((message) => message.routingKey.startsWith(prefix));

  it("when the walkthrough of every event type runs, then exactly its events arrive, each service's in commit order", () => {
    assert.equal(queue.messages.length, 8);
    assert.deepEqual(
      ofService('project.').map((message) => message.routingKey),
      ['project.created', 'project.updated', 'project.deleted'],
    );
    assert.deepEqual(
      ofService('defect.').map((message) => message.routingKey),
      ['defect.created', 'defect.status_changed', 'defect.updated', 'defect.updated', 'defect.deleted'],
    );
  });

  it('each body is the seed envelope with exactly the listed data fields and their types', () => {
    for (const message of queue.messages) {
      const body = message.body as Record<string, any>;
      assert.deepEqual(Object.keys(body), ['event_id', 'event_type', 'data', 'user_id', 'timestamp']);
      assert.match(body.event_id, UUID_V4);
      assert.equal(body.event_type, message.routingKey);
      assert.equal(body.user_id, owner.id);
      assert.match(body.timestamp, TIMESTAMP);
      const contract = CONTRACT[body.event_type];
      assert.deepEqual(Object.keys(body.data).sort(), Object.keys(contract).sort(), body.event_type);
      for (const [field, type] of Object.entries(contract)) {
        if (type === 'integer') assert.ok(Number.isInteger(body.data[field]), `${body.event_type}.${field}`);
        else assert.equal(typeof body.data[field], 'string', `${body.event_type}.${field}`);
      }
    }
  });

  it('the data carries the values of the change', () => {
    const data = (type: string) => queue.messages.filter((m) => m.routingKey === type).map((m) => m.body.data);
    assert.deepEqual(data('project.created'), [{ project_id: 1, name: 'Строительство моста', owner_id: owner.id }]);
    assert.deepEqual(data('project.updated'), [
      { project_id: 1, name: 'Строительство моста (этап 2)', updated_by: owner.id },
    ]);
    assert.deepEqual(data('defect.created'), [
      {
        defect_id: 1,
        title: 'Трещина в опоре',
        status: 'Новая',
        priority: 'Критический',
        project_id: 1,
        reporter_id: owner.id,
      },
    ]);
    assert.deepEqual(data('defect.status_changed'), [
      { defect_id: 1, old_status: 'Новая', new_status: 'В работе', changed_by: owner.id },
    ]);
    assert.deepEqual(data('defect.updated'), [
      { defect_id: 1, title: 'Трещина в опоре', updated_by: owner.id },
      { defect_id: 1, title: 'Трещина в опоре №2', updated_by: owner.id },
    ]);
    assert.deepEqual(data('defect.deleted'), [{ defect_id: 1, deleted_by: owner.id }]);
    assert.deepEqual(data('project.deleted'), [{ project_id: 1, deleted_by: owner.id }]);
  });

  it('AMQP properties: persistent, message_id, type, content type, timestamp, app_id', () => {
    for (const message of queue.messages) {
      const body = message.body as Record<string, any>;
      assert.equal(message.exchange, 'events');
      assert.equal(message.durable, true, 'delivery mode 2 (persistent)');
      assert.equal(message.messageId, body.event_id);
      assert.equal(message.type, body.event_type);
      assert.equal(message.contentType, 'application/json');
      assert.equal(message.appId, body.event_type.split('.')[0] === 'project' ? 'projects' : 'defects');
      assert.ok(Math.abs(message.timestamp! * 1000 - started) < 60_000, 'timestamp in seconds, near now');
    }
  });

  it('the request id travels in the headers, never in the body', () => {
    const byRequest = (message: AsyncMessage) => message.headers?.['x-request-id'];
    assert.deepEqual(ofService('project.').map(byRequest), [requestIds[0], requestIds[1], requestIds[6]]);
    assert.deepEqual(ofService('defect.').map(byRequest), [
      requestIds[2],
      requestIds[3],
      requestIds[3],
      requestIds[4],
      requestIds[5],
    ]);
    for (const message of queue.messages) assert.ok(!JSON.stringify(message.body).includes(byRequest(message)));
  });

  it('the publishing service logs the seed line once per published event', () => {
    const lines = system.logs.eventLines().filter((line) => /\[EVENT\] (project|defect)\./.test(line));
    assert.equal(lines.length, queue.messages.length);
    for (const message of queue.messages) {
      const body = message.body as Record<string, any>;
      const matching = lines.filter((line) => line.includes(`| ID: ${body.event_id} |`));
      assert.equal(matching.length, 1, body.event_id);
      assert.ok(
        matching[0].startsWith(`[EVENT] ${body.event_type} | ID: ${body.event_id} | User: ${body.user_id} | Data: {`),
        matching[0],
      );
    }
  });
});
