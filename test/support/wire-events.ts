import { Connection, type AsyncMessage, type Envelope } from 'rabbitmq-client';
import type { EventEnvelope } from '../../src/platform/events/envelope.ts';
import { DELIVERIES_EXCHANGE, EVENTS_EXCHANGE, type DeliveryReport } from '../../src/platform/events/transport.ts';
import { TEST_AMQP_URL } from './environment.ts';

// Events and delivery reports put on the wire, and read off it, with a plain AMQP client: what
// a relay that publishes a batch again, or another system on the same broker, would send.

/** The event's bytes as the relay sends them (the envelope, compact JSON). */
export const eventBytes = (event: EventEnvelope) => Buffer.from(JSON.stringify(event));

/** The properties the relay publishes an event with (README: RabbitMQ topology and message properties). */
export function relayProperties(event: EventEnvelope, headers: Record<string, string> = {}): Envelope {
  return {
    exchange: EVENTS_EXCHANGE,
    routingKey: event.event_type,
    durable: true,
    messageId: event.event_id,
    type: event.event_type,
    appId: 'test-relay',
    contentType: 'application/json',
    timestamp: Math.floor(Date.now() / 1000),
    headers,
  };
}

/**
 * Publishes the events in the order given, pipelined on one channel (the broker keeps their
 * order), and waits for every confirm: copies listed next to each other go out back to back.
 */
export async function publishEvents(events: Array<EventEnvelope | { event: EventEnvelope; headers: Record<string, string> }>): Promise<void> {
  const connection = new Connection({ url: TEST_AMQP_URL, connectionName: 'test-republishing-relay' });
  try {
    await connection.onConnect(5_000);
    const publisher = connection.createPublisher({ confirm: true });
    await Promise.all(
      events.map((entry) => {
        const { event, headers } = 'event' in entry ? entry : { event: entry, headers: {} };
        return publisher.send(relayProperties(event, headers), eventBytes(event));
      }),
    );
    await publisher.close();
  } finally {
    await connection.close();
  }
}

/** Publishes delivery-report messages (each an array of reports, as the transport sends them), pipelined. */
export async function publishReports(messages: Array<{ consumer: string; reports: DeliveryReport[] }>): Promise<void> {
  const connection = new Connection({ url: TEST_AMQP_URL, connectionName: 'test-report-publisher' });
  try {
    await connection.onConnect(5_000);
    const publisher = connection.createPublisher({ confirm: true });
    await Promise.all(
      messages.map(({ consumer, reports }) =>
        publisher.send(
          { exchange: DELIVERIES_EXCHANGE, routingKey: consumer, durable: true, contentType: 'application/json', type: 'delivery.report' },
          Buffer.from(JSON.stringify(reports)),
        ),
      ),
    );
    await publisher.close();
  } finally {
    await connection.close();
  }
}

export interface ReportTap {
  /** Every report received, in order, with when it arrived here. */
  reports: Array<DeliveryReport & { receivedAt: number }>;
  close(): Promise<void>;
}

/** An exclusive queue on `event-deliveries` that keeps the reports of the given consumers. */
export async function tapDeliveryReports(consumers: string[]): Promise<ReportTap> {
  const connection = new Connection({ url: TEST_AMQP_URL, connectionName: 'test-report-tap' });
  const reports: ReportTap['reports'] = [];
  const queue = `test.reports.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}`;
  const consumer = connection.createConsumer(
    {
      queue,
      queueOptions: { exclusive: true, autoDelete: true },
      exchanges: [{ exchange: DELIVERIES_EXCHANGE, type: 'topic', durable: true }],
      queueBindings: consumers.map((routingKey) => ({ exchange: DELIVERIES_EXCHANGE, queue, routingKey })),
    },
    async (message: AsyncMessage) => {
      const receivedAt = Date.now();
      const body = message.body as DeliveryReport | DeliveryReport[];
      for (const report of Array.isArray(body) ? body : [body]) reports.push({ ...report, receivedAt });
    },
  );
  await new Promise<void>((resolve, reject) => {
    consumer.once('ready', resolve);
    consumer.once('error', reject);
  });
  return {
    reports,
    async close() {
      await consumer.close();
      await connection.close();
    },
  };
}
