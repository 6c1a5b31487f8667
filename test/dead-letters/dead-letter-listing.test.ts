import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createEvent } from '../../src/platform/events/envelope.ts';
import { CONSUMER_NAMES } from '../../src/services/consumer-names.ts';
import type { TestUser } from '../support/api-client.ts';
import { withBroker } from '../support/broker.ts';
import { runDlq } from '../support/dlq-cli.ts';
import { startTestSystem, type TestSystem } from '../support/test-system.ts';

const CONSUMER = CONSUMER_NAMES.defectsProjectDirectory;

describe('dead-letter listing of a message that carries no park reason (RabbitMQ)', () => {
  let system: TestSystem;
  let admin: TestUser;
  const event = createEvent('project.created', { project_id: 9_001, name: 'Без причины', owner_id: 1 }, 1);

  before(async () => {
    system = await startTestSystem({ mode: 'postgres' });
    admin = await system.api.createUser('admin');
    // Put straight into the dead-letter queue, as a shovel or an operator's hand would: the
    // consumer never saw it, so it has no x-park-reason (nor x-attempt, x-park-error, x-parked-at).
    await withBroker(async (connection) => {
      // As the consumer's transport declares it (it does so once it first moves a message there).
      await connection.queueDeclare({ queue: `${CONSUMER}.dlq`, durable: true });
      const publisher = connection.createPublisher({ confirm: true });
      await publisher.send(
        {
          exchange: '',
          routingKey: `${CONSUMER}.dlq`,
          durable: true,
          messageId: event.event_id,
          type: event.event_type,
          contentType: 'application/json',
        },
        Buffer.from(JSON.stringify(event)),
      );
      await publisher.close();
    });
  });
  after(async () => {
    await system?.close();
  });

  it('when an admin lists it, then its reason is null, not a reason made up for it', async () => {
    const response = await system.api.get(`/v1/admin/dead-letters?consumer=${CONSUMER}`, admin.token);
    assert.equal(response.status, 200);
    assert.equal(response.body.total, 1);
    const [item] = response.body.items;
    assert.equal(item.id, event.event_id);
    assert.equal(item.eventType, 'project.created');
    assert.equal(item.reason, null);
    assert.deepEqual(item.body, event, 'the body as it was parked');

    const one = await system.api.get(`/v1/admin/dead-letters/${event.event_id}?consumer=${CONSUMER}`, admin.token);
    assert.equal(one.status, 200);
    assert.equal(one.body.reason, null);
  });

  it('when the dlq command lists it, then the reason column says "-"', async () => {
    const listed = await runDlq(['list', '--consumer', CONSUMER], {
      AMQP_URL: system.env.AMQP_URL,
      DATABASE_URL: system.env.DATABASE_URL,
    });
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout.trim().split('\n');
    assert.equal(lines.length, 1, lines.join('\n'));
    const [consumer, eventType, id, , reason] = lines[0].split('\t');
    assert.deepEqual([consumer, eventType, id, reason], [CONSUMER, 'project.created', event.event_id, '-']);
  });
});

describe('dead-letter listing of a parked row that has no park reason (embedded)', () => {
  let system: TestSystem;
  let admin: TestUser;

  before(async () => {
    system = await startTestSystem({ mode: 'embedded' });
    admin = await system.api.createUser('admin');
  });
  after(async () => {
    await system?.close();
  });

  it('when an admin lists it, then its reason is null, as on RabbitMQ', async () => {
    const id = randomUUID();
    // The in-process transport always stores a reason when it parks; a row without one (from
    // an older version, or a hand's repair) must list the way RabbitMQ lists a message without it.
    await system.host.db.query(
      `INSERT INTO event_transport.deliveries (queue, routing_key, message_id, body, parked_at)
       VALUES ($1, 'project.created', $2, $3, now())`,
      [CONSUMER, id, JSON.stringify(createEvent('project.created', { project_id: 9_002, name: 'x', owner_id: 1 }, 1))],
    );
    const response = await system.api.get(`/v1/admin/dead-letters?consumer=${CONSUMER}`, admin.token);
    assert.equal(response.status, 200);
    const item = response.body.items.find((candidate: any) => candidate.id === id);
    assert.ok(item, JSON.stringify(response.body));
    assert.equal(item.reason, null);
  });
});
