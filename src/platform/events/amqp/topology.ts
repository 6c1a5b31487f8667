import { DELIVERIES_EXCHANGE, EVENTS_EXCHANGE, type SubscriptionOptions } from '../transport.ts';
import { deadLetterQueueOf, retryQueueOf } from './dead-letters.ts';

export const EXCHANGE_DECLARATION = { exchange: EVENTS_EXCHANGE, type: 'topic', durable: true } as const;
export const DELIVERIES_DECLARATION = { exchange: DELIVERIES_EXCHANGE, type: 'topic', durable: true } as const;

/**
 * A consumer's retry and dead-letter queues. A retry queue dead-letters each message back
 * to the consumer's queue when its per-message expiration (the delay) runs out.
 */
export function retryAndDeadLetterQueues(queue: string, retrySteps: number) {
  return [
    ...Array.from({ length: retrySteps }, (_, index) => ({
      queue: retryQueueOf(queue, index + 1),
      durable: true,
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue },
    })),
    { queue: deadLetterQueueOf(queue), durable: true },
  ];
}

/** The consumer's durable queue, bound to its patterns on its exchange (`events` unless said otherwise). */
export function consumerQueue(subscription: SubscriptionOptions) {
  const { queue } = subscription;
  const exchange = subscription.exchange ?? EVENTS_EXCHANGE;
  return {
    queue,
    queueOptions: { durable: true },
    qos: { prefetchCount: subscription.prefetch },
    concurrency: subscription.prefetch,
    exchanges: [exchange === EVENTS_EXCHANGE ? EXCHANGE_DECLARATION : DELIVERIES_DECLARATION],
    queueBindings: subscription.bindings.map((routingKey) => ({ exchange, queue, routingKey })),
  };
}

export function isTopologyRefusal(error: unknown): boolean {
  return (error as { code?: string })?.code === 'PRECONDITION_FAILED';
}

export function explainTopologyRefusal(error: unknown): string {
  return (
    `RabbitMQ refused the topology: ${(error as Error).message}. ` +
    `The exchange '${EVENTS_EXCHANGE}' must be a durable topic exchange; an existing one declared otherwise ` +
    `(for example non-durable, as the seed's consumer example does) must be deleted ` +
    `(rabbitmqadmin delete exchange name=${EVENTS_EXCHANGE}, or the management UI) so the services can declare it. ` +
    `Events wait in the outbox meanwhile.`
  );
}
