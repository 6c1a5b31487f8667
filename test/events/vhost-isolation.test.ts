import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Connection } from 'rabbitmq-client';
import { CONSUMER_NAMES } from '../../src/services/consumer-names.ts';
import { deleteQueues, withBroker } from '../support/broker.ts';
import { NEIGHBOUR_AMQP_URL, SERVICE_QUEUES, TEST_AMQP_URL } from '../support/environment.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Every .ts file under the folders that talk to a broker in tests and benchmarks. */
async function sourcesUnder(folder: string): Promise<string[]> {
  const entries = await fs.readdir(path.join(ROOT, folder), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/**
 * The tests and the bench delete and re-declare the services' queues and the `events`
 * exchange. They must do it in a vhost of their own, so that a deployment on the same
 * broker (on `/`, or any other vhost) keeps every queued message.
 */
describe('tests and the bench keep to their own RabbitMQ vhost', () => {
  it('TEST_AMQP_URL names a vhost other than the default, and no test or bench file builds a broker URL of its own', async () => {
    const vhost = decodeURIComponent(new URL(TEST_AMQP_URL).pathname.slice(1));
    assert.ok(vhost !== '' && vhost !== '/', `TEST_AMQP_URL ${TEST_AMQP_URL} is on the default vhost`);
    const files = [...(await sourcesUnder('test')), ...(await sourcesUnder('bench'))];
    const offenders = [];
    for (const file of files) {
      if (file.endsWith(path.join('support', 'environment.ts'))) continue;
      if (/amqps?:\/\//.test(await fs.readFile(file, 'utf8'))) offenders.push(path.relative(ROOT, file));
    }
    assert.deepEqual(offenders, [], 'broker URLs must come from test/support/environment.ts');
  });

  describe(
    'a deployment beside the tests keeps its queued messages',
    { skip: !NEIGHBOUR_AMQP_URL && 'TEST_AMQP_URL is set: no neighbour vhost' },
    () => {
      const neighbour = new Connection({ url: NEIGHBOUR_AMQP_URL, connectionName: 'test-neighbour' });
      const queue = CONSUMER_NAMES.notificationsEmail;
      after(async () => {
        await neighbour.queueDelete({ queue });
        await neighbour.close();
      });

      it('when the tests reset the service queues and the events exchange, then the same queue in another vhost keeps its message', async () => {
        await neighbour.onConnect(5_000);
        await neighbour.queueDelete({ queue });
        await neighbour.queueDeclare({ queue, durable: true });
        const publisher = neighbour.createPublisher({ confirm: true });
        await publisher.send({ routingKey: queue, durable: true }, { event_id: 'kept' });
        await publisher.close();

        // What the test systems, the topology test and the bench do before they start.
        await deleteQueues(SERVICE_QUEUES);
        await withBroker(async (broker) => {
          await broker.exchangeDeclare({ exchange: 'events', type: 'topic', durable: true });
          await broker.exchangeDelete({ exchange: 'events' });
        });

        const { messageCount } = await neighbour.queueDeclare({ queue, passive: true });
        assert.equal(messageCount, 1);
      });
    },
  );
});
