import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CONSUMER_NAMES } from '../../src/services/consumer-names.ts';
import type { ApiResponse, TestUser } from '../support/api-client.ts';
import { withBroker } from '../support/broker.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

/**
 * Which consumers each waiting event must reach (docs/consumers.md's table of queues and
 * bindings), restated by hand. Not derived: a consumer's bindings are its handlers' keys
 * (event-consumer.ts), built inside each service module from its dependencies, and no public
 * surface lists them (AMQP cannot list a queue's bindings, the management API is not assumed,
 * the AsyncAPI document names no consumers). The queue names come from consumer-names.ts.
 */
const CONSUMERS_OF: Record<string, string[]> = {
  'user.registered': [
    CONSUMER_NAMES.projectsUserDirectory,
    CONSUMER_NAMES.notificationsEmail,
    CONSUMER_NAMES.eventLogRecorder,
  ],
  'user.role_changed': [CONSUMER_NAMES.eventLogRecorder],
  'project.created': [
    CONSUMER_NAMES.defectsProjectDirectory,
    CONSUMER_NAMES.authProjectMembers,
    CONSUMER_NAMES.notificationsEmail,
    CONSUMER_NAMES.eventLogRecorder,
  ],
};

describe('broker refuses the topology', () => {
  let system: TestSystem;
  let admin: TestUser;
  let user: TestUser;
  let created: ApiResponse;

  before(async () => {
    // What the seed's consumer example leaves behind: `events` declared without durable=True.
    await withBroker(async (broker) => {
      await broker.exchangeDelete({ exchange: 'events' });
      await broker.exchangeDeclare({ exchange: 'events', type: 'topic', durable: false });
    });
    system = await startTestSystem({ mode: 'postgres' });
    admin = await system.api.createUser('admin');
    user = await system.api.createUser('manager');
    // A write while the broker refuses: its event waits in the outbox with the users'.
    created = await system.api.post('/v1/projects', { name: 'Мост через реку' }, user.token);
  });
  after(async () => {
    await system?.close();
    // Leave the broker as every other test expects it: a durable `events`.
    await withBroker(async (broker) => {
      await broker.exchangeDelete({ exchange: 'events' });
      await broker.exchangeDeclare({ exchange: 'events', type: 'topic', durable: true });
    });
  });

  it('when `events` exists as a non-durable exchange, then writes still succeed and readiness and the log say what is wrong and how to fix it', async () => {
    assert.equal(created.status, 201, 'the write made in `before` succeeded');

    const readiness = await eventually(
      async () => {
        const response = await system.api.get('/readyz');
        const broker = response.body.checks?.find((check: any) => check.name === 'broker');
        return response.status === 503 && /durable/.test(broker?.detail ?? '') ? broker : undefined;
      },
      10_000,
      'readiness to name the refused topology',
    );
    assert.equal(readiness.ok, false);
    assert.match(readiness.detail, /PRECONDITION_FAILED/);
    assert.match(readiness.detail, /delete/);
    const logged = await eventually(() =>
      system.logs.lines.find((line) => line.level >= 50 && /PRECONDITION_FAILED/.test(line.msg)),
    );
    assert.match(logged.msg, /must be a durable topic exchange/);
    assert.match(logged.msg, /delete/);
  });

  it('when the operator deletes the wrong exchange, then the service declares the right one by itself and every event that waited reaches its consumers', async () => {
    // What waited while the broker refused: the users' and the project's events of `before`.
    const { rows: waiting } = await system.host.db.query<{ event_id: string; event_type: string }>(
      `SELECT event_id, event_type FROM auth.outbox UNION ALL SELECT event_id, event_type FROM projects.outbox`,
    );
    assert.ok(
      waiting.some((event) => event.event_type === 'project.created'),
      `the project's event waited: ${JSON.stringify(waiting)}`,
    );
    for (const { event_type } of waiting) assert.ok(CONSUMERS_OF[event_type], `a consumer list for ${event_type}`);

    // Only deleted, as the operator is told to: nothing here declares `events` again.
    await withBroker(async (broker) => {
      await broker.exchangeDelete({ exchange: 'events' });
      await eventually(
        async () => {
          await broker.exchangeDeclare({ exchange: 'events', passive: true });
          return true;
        },
        20_000,
        'the service to declare `events` again',
      );
      // It exists now, so this declares nothing: it only checks, as the broker refuses a
      // declaration that differs from the exchange it has (PRECONDITION_FAILED).
      await broker.exchangeDeclare({ exchange: 'events', type: 'topic', durable: true });
    });

    // Reached the consumers, not just confirmed by the broker: each consumer reports it handled.
    const deliveriesOf = async (eventId: string) => {
      const response = await system.api.get(`/v1/events/${eventId}`, admin.token);
      return response.status === 200 ? (response.body.deliveries as Array<{ consumer: string; status: string }>) : [];
    };
    for (const { event_id, event_type } of waiting) {
      const expected = CONSUMERS_OF[event_type];
      await eventually(
        async () => {
          const deliveries = await deliveriesOf(event_id);
          const handledBy = deliveries.filter((d) => d.status === 'handled').map((d) => d.consumer);
          if (expected.every((consumer) => handledBy.includes(consumer))) return true;
          throw new Error(`deliveries so far ${JSON.stringify(deliveries)}`);
        },
        20_000,
        `${event_type} ${event_id} handled by ${expected.join(', ')}`,
      );
    }

    const second = await system.api.post('/v1/projects', { name: 'Тоннель' }, user.token);
    assert.equal(second.status, 201);
    const tunnel = await eventually(
      async () => {
        const page = await system.api.get(
          `/v1/events?event_type=project.created&project_id=${second.body.id}`,
          admin.token,
        );
        return page.body.items[0];
      },
      15_000,
      'the new project recorded by the event log',
    );
    assert.equal(tunnel.data.name, 'Тоннель');
    await eventually(async () => (await system.api.get('/readyz')).status === 200, 10_000, 'readiness to recover');
  });
});
