import type { AsyncMessage, Publisher } from 'rabbitmq-client';
import { createBatchWriter } from '../../batch-writer.ts';
import {
  deliveryReport,
  DELIVERIES_EXCHANGE,
  type DeliveryOutcome,
  type DeliveryReport,
  type SubscriptionOptions,
} from '../transport.ts';

/** How long a delivery report waits for others to travel with. */
const REPORT_BATCH_WAIT_MS = 2;

/** Reports one outcome; resolves once the report's message is confirmed, undefined when the consumer reports nothing. */
export type ReportOutcome = (
  message: AsyncMessage,
  outcome: DeliveryOutcome,
  attempt: number,
  routingKey: string,
) => Promise<void> | undefined;

/** A consumer's delivery reports on `event-deliveries`, its queue as routing key, published by its mover. */
export function createReportPublisher(mover: Publisher, subscription: SubscriptionOptions): ReportOutcome {
  const { queue } = subscription;
  if (subscription.reportOutcomes === false) return () => undefined;
  // Outcomes that come about the same time go out as one message (an array of reports):
  // one publish and one confirm per report was a good share of the broker's work per event.
  const reports = createBatchWriter<DeliveryReport>({
    write: (batch) =>
      mover.send(
        {
          exchange: DELIVERIES_EXCHANGE,
          routingKey: queue,
          durable: true,
          contentType: 'application/json',
          type: 'delivery.report',
        },
        Buffer.from(JSON.stringify(batch)),
      ),
    maxBatch: subscription.prefetch,
    maxWaitMs: REPORT_BATCH_WAIT_MS,
  });
  return (message, outcome, attempt, routingKey) =>
    reports.add(deliveryReport(queue, { messageId: message.messageId, routingKey, attempt }, outcome));
}
