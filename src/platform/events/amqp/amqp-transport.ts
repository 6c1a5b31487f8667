import type { Logger } from '../../logger.ts';
import type { EventTransport } from '../transport.ts';
import { connectToBroker } from './connection.ts';
import { createAmqpDeadLetters } from './dead-letters.ts';
import { createEventPublisher } from './publisher.ts';
import { subscribe } from './subscription.ts';

/**
 * RabbitMQ through rabbitmq-client, which reconnects and re-declares topology by itself.
 * The parts: the connection and what it knows (connection.ts), the exchanges and queues
 * (topology.ts), publishing events (publisher.ts), consuming a queue (subscription.ts)
 * with its outcomes (outcomes.ts) and delivery reports (delivery-reports.ts), and the
 * dead-letter queues (dead-letters.ts).
 */
export function createAmqpTransport(options: { url: string; log: Logger; connectionName: string }): EventTransport {
  const link = connectToBroker(options);
  const deadLetters = createAmqpDeadLetters(link.connection);
  const publisher = createEventPublisher(link);
  return {
    kind: 'amqp',
    publish: (messages) => publisher.publish(messages),
    subscribe: (subscription) => subscribe(link, publisher.unbound, subscription),
    deadLetters,
    onReady: (listener) => link.onReady(listener),
    isReady: () => link.connection.ready,
    status: () => link.status(),
    async close() {
      await publisher.close();
      await link.connection.close();
    },
  };
}
