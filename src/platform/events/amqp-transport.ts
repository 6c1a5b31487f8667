import { Connection, ConsumerStatus, type AsyncMessage, type Publisher } from 'rabbitmq-client';
import { createBatchWriter } from '../batch-writer.ts';
import type { Logger } from '../logger.ts';
import { bodyBytes, copyProperties, createAmqpDeadLetters, deadLetterQueueOf, parkedMessageId, retryQueueOf } from './amqp-dead-letters.ts';
import {
  deliveryReport,
  DELIVERIES_EXCHANGE,
  EVENTS_EXCHANGE,
  HEADERS,
  type DeliveryOutcome,
  type DeliveryReport,
  type EventTransport,
  type OutgoingMessage,
  type SubscriptionOptions,
  type TransportStatus,
} from './transport.ts';

const EXCHANGE_DECLARATION = { exchange: EVENTS_EXCHANGE, type: 'topic', durable: true } as const;
const DELIVERIES_DECLARATION = { exchange: DELIVERIES_EXCHANGE, type: 'topic', durable: true } as const;
/** How long a delivery report waits for others to travel with. */
const REPORT_BATCH_WAIT_MS = 2;

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
    // Nagle's algorithm held pipelined publishes and acks back ~40 ms (delayed ACKs) under load.
    noDelay: true,
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

  const deadLetters = createAmqpDeadLetters(connection);
  /** Readiness and the log say what the broker refused and how to fix it. */
  const noteTopologyRefusal = (error: unknown) => {
    if (!isTopologyRefusal(error)) return;
    const explanation = explainTopologyRefusal(error);
    if (explanation !== topologyError) log.error(explanation);
    topologyError = explanation;
  };
  /**
   * This process's consumers of `events` whose queue has never been bound (the broker was
   * away at start, or refused the exchange). Nothing is published until each is: RabbitMQ
   * confirms an event that no queue is bound to and drops it, and the outbox would then
   * delete it. Without this, an operator's deleting a wrong `events` let the relay, retrying
   * every second, declare the exchange and publish what waited before the consumers (whose
   * setup retries back off up to 5 s) had bound their queues: those events were lost.
   */
  const unbound = new Set<string>();
  let publisher: Publisher | undefined;
  const getPublisher = () =>
    (publisher ??= connection.createPublisher({ confirm: true, exchanges: [EXCHANGE_DECLARATION] }));

  return {
    kind: 'amqp',
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
        topologyError = undefined;
      } catch (error) {
        noteTopologyRefusal(error);
        throw error;
      }
    },
    subscribe(subscription: SubscriptionOptions) {
      const { queue } = subscription;
      const exchange = subscription.exchange ?? EVENTS_EXCHANGE;
      const reportOutcomes = subscription.reportOutcomes !== false;
      // Retry and dead-letter queues: declared (again after every reconnection) by the
      // publisher that moves messages into them. A retry queue dead-letters each message
      // back to the consumer's queue when its per-message expiration (the delay) runs out.
      const mover = connection.createPublisher({
        confirm: true,
        exchanges: [DELIVERIES_DECLARATION],
        queues: [
          ...Array.from({ length: subscription.retrySteps }, (_, index) => ({
            queue: retryQueueOf(queue, index + 1),
            durable: true,
            arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue },
          })),
          { queue: deadLetterQueueOf(queue), durable: true },
        ],
      });
      // Outcomes that come about the same time go out as one message (an array of reports):
      // one publish and one confirm per report was a good share of the broker's work per event.
      const reports = createBatchWriter<DeliveryReport>({
        write: (batch) =>
          mover.send(
            { exchange: DELIVERIES_EXCHANGE, routingKey: queue, durable: true, contentType: 'application/json', type: 'delivery.report' },
            Buffer.from(JSON.stringify(batch)),
          ),
        maxBatch: subscription.prefetch,
        maxWaitMs: REPORT_BATCH_WAIT_MS,
      });
      const report = (message: AsyncMessage, outcome: DeliveryOutcome, attempt: number, routingKey: string) => {
        if (!reportOutcomes) return undefined;
        return reports.add(deliveryReport(queue, { messageId: message.messageId, routingKey, attempt }, outcome));
      };
      const carryOut = (message: AsyncMessage, outcome: DeliveryOutcome, attempt: number) => {
        if (outcome.kind === 'ack') return undefined;
        const headers: Record<string, unknown> = { ...message.headers, [HEADERS.routingKey]: message.headers?.[HEADERS.routingKey] ?? message.routingKey };
        const envelope = copyProperties(message);
        if (outcome.kind === 'retry') {
          return mover.send(
            { ...envelope, routingKey: retryQueueOf(queue, attempt), expiration: String(outcome.delayMs), headers: { ...headers, [HEADERS.attempt]: attempt + 1, [HEADERS.lastError]: outcome.error } },
            bodyBytes(message.body),
          );
        }
        return mover.send(
          {
            ...envelope,
            routingKey: deadLetterQueueOf(queue),
            messageId: parkedMessageId(message.messageId),
            headers: { ...headers, [HEADERS.attempt]: attempt, [HEADERS.parkReason]: outcome.reason, [HEADERS.parkError]: outcome.error, [HEADERS.parkedAt]: new Date().toISOString() },
          },
          bodyBytes(message.body),
        );
      };
      if (exchange === EVENTS_EXCHANGE) unbound.add(queue);
      const consumer = connection.createConsumer(
        {
          queue,
          queueOptions: { durable: true },
          qos: { prefetchCount: subscription.prefetch },
          concurrency: subscription.prefetch,
          exchanges: [exchange === EVENTS_EXCHANGE ? EXCHANGE_DECLARATION : DELIVERIES_DECLARATION],
          queueBindings: subscription.bindings.map((routingKey) => ({ exchange, queue, routingKey })),
        },
        async (message) => {
          const attempt = Number(message.headers?.[HEADERS.attempt] ?? 1);
          const routingKey = String(message.headers?.[HEADERS.routingKey] ?? message.routingKey);
          const outcome = await subscription.handle({
            routingKey,
            body: message.body,
            headers: message.headers ?? {},
            messageId: message.messageId,
            attempt,
          });
          // The copy is confirmed in its retry or dead-letter queue before the original is acknowledged.
          await carryOut(message, outcome, attempt);
          // A report is the event log's view, not the outcome: a lost one must not send the
          // message (and every other one sharing its report) round again.
          await report(message, outcome, attempt, routingKey)?.catch((error: unknown) =>
            log.warn({ err: error, queue }, 'delivery report not published; the event log shows an older status'),
          );
          return ConsumerStatus.ACK;
        },
      );
      consumer.on('error', (error) => {
        noteTopologyRefusal(error);
        log.warn({ err: error, queue }, 'consumer error');
      });
      consumer.on('ready', () => {
        topologyError = undefined;
        // The relay may be waiting for this queue: wake it now rather than at its next retry.
        if (unbound.delete(queue)) for (const listener of readyListeners) listener();
      });
      return {
        ready: new Promise<void>((resolve) => consumer.once('ready', () => resolve())),
        async close() {
          unbound.delete(queue);
          await consumer.close();
          await mover.close();
        },
      };
    },
    deadLetters,
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
