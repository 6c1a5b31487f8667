import type { AsyncMessage, Connection, Publisher } from 'rabbitmq-client';
import { HEADERS, type DeliveryOutcome, type SubscriptionOptions } from '../transport.ts';
import { bodyBytes, copyProperties, deadLetterQueueOf, parkedMessageId, retryQueueOf } from './dead-letters.ts';
import { DELIVERIES_DECLARATION, retryAndDeadLetterQueues } from './topology.ts';

/**
 * The publisher that moves a consumer's messages into its retry and dead-letter queues (and
 * sends its delivery reports). It declares those queues, again after every reconnection.
 */
export function createMover(connection: Connection, subscription: SubscriptionOptions): Publisher {
  return connection.createPublisher({
    confirm: true,
    exchanges: [DELIVERIES_DECLARATION],
    queues: retryAndDeadLetterQueues(subscription.queue, subscription.retrySteps),
  });
}

/**
 * Carries out a retry or a park: a copy of the message, in `<queue>.retry.<attempt>` with the
 * delay as its expiration, or in `<queue>.dlq`; resolves once the broker confirmed it. An ack
 * needs nothing here.
 */
export function carryOut(
  mover: Publisher,
  queue: string,
  message: AsyncMessage,
  outcome: DeliveryOutcome,
  attempt: number,
) {
  if (outcome.kind === 'ack') return undefined;
  const originalRoutingKey: unknown = message.headers?.[HEADERS.routingKey] ?? message.routingKey;
  const headers: Record<string, unknown> = { ...message.headers, [HEADERS.routingKey]: originalRoutingKey };
  const envelope = copyProperties(message);
  if (outcome.kind === 'retry') {
    return mover.send(
      {
        ...envelope,
        routingKey: retryQueueOf(queue, attempt),
        expiration: String(outcome.delayMs),
        headers: { ...headers, [HEADERS.attempt]: attempt + 1, [HEADERS.lastError]: outcome.error },
      },
      bodyBytes(message.body),
    );
  }
  return mover.send(
    {
      ...envelope,
      routingKey: deadLetterQueueOf(queue),
      messageId: parkedMessageId(message.messageId),
      headers: {
        ...headers,
        [HEADERS.attempt]: attempt,
        [HEADERS.parkReason]: outcome.reason,
        [HEADERS.parkError]: outcome.error,
        [HEADERS.parkedAt]: new Date().toISOString(),
      },
    },
    bodyBytes(message.body),
  );
}
