import { ConsumerStatus, type AsyncMessage, type Publisher } from 'rabbitmq-client';
import { EVENTS_EXCHANGE, HEADERS, type Subscription, type SubscriptionOptions } from '../transport.ts';
import type { BrokerLink } from './connection.ts';
import { createReportPublisher, type ReportOutcome } from './delivery-reports.ts';
import { carryOut, createMover } from './outcomes.ts';
import { consumerQueue } from './topology.ts';

/** What a subscription's deliveries go through: its handler, its mover, its reports. */
interface Delivering {
  subscription: SubscriptionOptions;
  mover: Publisher;
  report: ReportOutcome;
  link: BrokerLink;
}

/**
 * Consumes the subscription's queue: each message is handled, its outcome carried out, its
 * report sent, and then it is acknowledged. `unbound` holds the queue until it is first bound.
 */
export function subscribe(link: BrokerLink, unbound: Set<string>, subscription: SubscriptionOptions): Subscription {
  const { queue } = subscription;
  const mover = createMover(link.connection, subscription);
  const delivering: Delivering = { subscription, mover, report: createReportPublisher(mover, subscription), link };
  if ((subscription.exchange ?? EVENTS_EXCHANGE) === EVENTS_EXCHANGE) unbound.add(queue);
  const consumer = link.connection.createConsumer(consumerQueue(subscription), (message) =>
    deliver(delivering, message),
  );
  consumer.on('error', (error) => {
    link.noteTopologyRefusal(error);
    link.log.warn({ err: error, queue }, 'consumer error');
  });
  consumer.on('ready', () => {
    link.noteTopologyAccepted();
    // The relay may be waiting for this queue: wake it now rather than at its next retry.
    if (unbound.delete(queue)) link.notifyReady();
  });
  return {
    ready: new Promise<void>((resolve) => consumer.once('ready', () => resolve())),
    async close() {
      unbound.delete(queue);
      await consumer.close();
      await mover.close();
    },
  };
}

/** One message: handled, its outcome carried out and reported, then acknowledged. */
async function deliver(
  { subscription, mover, report, link }: Delivering,
  message: AsyncMessage,
): Promise<ConsumerStatus> {
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
  await carryOut(mover, subscription.queue, message, outcome, attempt);
  // A report is the event log's view, not the outcome: a lost one must not send the
  // message (and every other one sharing its report) round again.
  await report(message, outcome, attempt, routingKey)?.catch((error: unknown) =>
    link.log.warn(
      { err: error, queue: subscription.queue },
      'delivery report not published; the event log shows an older status',
    ),
  );
  return ConsumerStatus.ACK;
}
