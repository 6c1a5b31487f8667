import type { AsyncMessage, Envelope } from 'rabbitmq-client';
import type { EventEnvelope } from '../../src/platform/events/envelope.ts';
import { DELIVERIES_EXCHANGE, EVENTS_EXCHANGE, type DeliveryReport } from '../../src/platform/events/transport.ts';
import { withBroker } from './broker.ts';

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
export async function publishEvents(
  events: Array<EventEnvelope | { event: EventEnvelope; headers: Record<string, string> }>,
): Promise<void> {
  await withBroker(async (connection) => {
    const publisher = connection.createPublisher({ confirm: true });
    await Promise.all(
      events.map((entry) => {
        const { event, headers } = 'event' in entry ? entry : { event: entry, headers: {} };
        return publisher.send(relayProperties(event, headers), eventBytes(event));
      }),
    );
    await publisher.close();
  });
}

/** Publishes delivery-report messages (each an array of reports, as the transport sends them), pipelined. */
export async function publishReports(messages: Array<{ consumer: string; reports: DeliveryReport[] }>): Promise<void> {
  await withBroker(async (connection) => {
    const publisher = connection.createPublisher({ confirm: true });
    await Promise.all(
      messages.map(({ consumer, reports }) =>
        publisher.send(
          {
            exchange: DELIVERIES_EXCHANGE,
            routingKey: consumer,
            durable: true,
            contentType: 'application/json',
            type: 'delivery.report',
          },
          Buffer.from(JSON.stringify(reports)),
        ),
      ),
    );
    await publisher.close();
  });
}

/**
 * The reports in messages read off `event-deliveries` (a test queue bound there with
 * `bindTestQueue(consumers, { exchange: DELIVERIES_EXCHANGE })`), in order: a message holds
 * one report or an array of them.
 */
export function reportsIn(messages: AsyncMessage[]): DeliveryReport[] {
  return messages.flatMap((message) => message.body as DeliveryReport | DeliveryReport[]);
}
