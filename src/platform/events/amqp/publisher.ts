import type { Publisher } from 'rabbitmq-client';
import { EVENTS_EXCHANGE, type OutgoingMessage } from '../transport.ts';
import type { BrokerLink } from './connection.ts';
import { EXCHANGE_DECLARATION } from './topology.ts';

export interface EventPublisher {
  /** Resolves once every message is confirmed by the broker. */
  publish(messages: OutgoingMessage[]): Promise<void>;
  /**
   * This process's consumers of `events` whose queue has never been bound (the broker was
   * away at start, or refused the exchange). Nothing is published until each is: RabbitMQ
   * confirms an event that no queue is bound to and drops it, and the outbox would then
   * delete it. Without this, an operator's deleting a wrong `events` let the relay, retrying
   * every second, declare the exchange and publish what waited before the consumers (whose
   * setup retries back off up to 5 s) had bound their queues: those events were lost.
   */
  readonly unbound: Set<string>;
  close(): Promise<void>;
}

/** Publishes events on `events` with publisher confirms, on one channel created at the first publish. */
export function createEventPublisher(link: BrokerLink): EventPublisher {
  const { connection } = link;
  const unbound = new Set<string>();
  let publisher: Publisher | undefined;
  const getPublisher = () =>
    (publisher ??= connection.createPublisher({ confirm: true, exchanges: [EXCHANGE_DECLARATION] }));

  return {
    unbound,
    async publish(messages: OutgoingMessage[]) {
      if (unbound.size > 0) {
        throw new Error(
          `not publishing before the queues ${[...unbound].join(', ')} are bound to '${EVENTS_EXCHANGE}': ` +
            'the broker would drop events no queue is bound to',
        );
      }
      // The confirm is what counts here; the relay's transaction is not needed.
      const pub = getPublisher();
      try {
        // Pipelined on one channel: the broker keeps their order, confirms come back in bulk.
        await Promise.all(
          messages.map((message) =>
            pub.send(
              {
                exchange: EVENTS_EXCHANGE,
                routingKey: message.routingKey,
                durable: true,
                messageId: message.messageId,
                type: message.type,
                appId: message.appId,
                contentType: 'application/json',
                contentEncoding: undefined,
                timestamp: Math.floor(message.timestamp.getTime() / 1000),
                headers: message.headers,
              },
              message.body,
            ),
          ),
        );
        link.noteTopologyAccepted();
      } catch (error) {
        link.noteTopologyRefusal(error);
        throw error;
      }
    },
    async close() {
      await publisher?.close();
    },
  };
}
