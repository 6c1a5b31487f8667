import { Connection, ConsumerStatus, type Publisher } from 'rabbitmq-client';
import type { Logger } from '../logger.ts';
import {
  EVENTS_EXCHANGE,
  type EventTransport,
  type IncomingMessage,
  type OutgoingMessage,
  type SubscriptionOptions,
  type TransportStatus,
} from './transport.ts';

const EXCHANGE_DECLARATION = { exchange: EVENTS_EXCHANGE, type: 'topic', durable: true } as const;

/** RabbitMQ through rabbitmq-client, which reconnects and re-declares topology by itself. */
export function createAmqpTransport(options: { url: string; log: Logger; connectionName: string }): EventTransport {
  const { log } = options;
  const connection = new Connection({
    url: options.url,
    connectionName: options.connectionName,
    // Fail a publish fast while disconnected: the outbox keeps the events, the relay retries.
    acquireTimeout: 5_000,
    retryLow: 200,
    retryHigh: 5_000,
  });
  const readyListeners: Array<() => void> = [];
  let lastError: string | undefined;
  let topologyError: string | undefined;

  connection.on('connection', () => {
    if (lastError) log.info('connected to RabbitMQ again');
    lastError = undefined;
    for (const listener of readyListeners) listener();
  });
  connection.on('error', (error) => {
    const message = describeAmqpError(error);
    if (message !== lastError) log.warn({ err: error }, `RabbitMQ: ${message}`);
    lastError = message;
  });

  let publisher: Publisher | undefined;
  const getPublisher = () =>
    (publisher ??= connection.createPublisher({ confirm: true, exchanges: [EXCHANGE_DECLARATION] }));

  return {
    kind: 'amqp',
    async publish(messages: OutgoingMessage[]) {
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
        topologyError = undefined;
      } catch (error) {
        if (isTopologyRefusal(error)) {
          const explanation = explainTopologyRefusal(error);
          if (explanation !== topologyError) log.error(explanation);
          topologyError = explanation;
        }
        throw error;
      }
    },
    subscribe(subscription: SubscriptionOptions) {
      const consumer = connection.createConsumer(
        {
          queue: subscription.queue,
          queueOptions: { durable: true },
          qos: { prefetchCount: subscription.prefetch },
          concurrency: subscription.prefetch,
          exchanges: [EXCHANGE_DECLARATION],
          queueBindings: subscription.bindings.map((routingKey) => ({
            exchange: EVENTS_EXCHANGE,
            queue: subscription.queue,
            routingKey,
          })),
        },
        async (message) => {
          const incoming: IncomingMessage = {
            routingKey: message.routingKey,
            body: message.body,
            headers: message.headers ?? {},
            redelivered: message.redelivered,
          };
          await subscription.handle(incoming);
          return ConsumerStatus.ACK;
        },
      );
      consumer.on('error', (error) => log.warn({ err: error, queue: subscription.queue }, 'consumer error'));
      return { close: () => consumer.close() };
    },
    onReady(listener) {
      readyListeners.push(listener);
    },
    isReady: () => connection.ready,
    status(): TransportStatus {
      if (topologyError) return { ok: false, detail: topologyError };
      if (!connection.ready) return { ok: false, detail: `RabbitMQ unreachable: ${lastError ?? 'connecting'}` };
      return { ok: true, detail: 'connected to RabbitMQ' };
    },
    async close() {
      await publisher?.close();
      await connection.close();
    },
  };
}

function isTopologyRefusal(error: unknown): boolean {
  return (error as { code?: string })?.code === 'PRECONDITION_FAILED';
}

function explainTopologyRefusal(error: unknown): string {
  return (
    `RabbitMQ refused the topology: ${(error as Error).message}. ` +
    `The exchange '${EVENTS_EXCHANGE}' must be a durable topic exchange; an existing one declared otherwise ` +
    `(for example non-durable, as the seed's consumer example does) must be deleted ` +
    `(rabbitmqadmin delete exchange name=${EVENTS_EXCHANGE}, or the management UI) so the services can declare it. ` +
    `Events wait in the outbox meanwhile.`
  );
}

function describeAmqpError(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  return code ? `${code}: ${message}` : String(message ?? error);
}
