import { randomUUID } from 'node:crypto';
import type { Channel, Connection, SyncMessage } from 'rabbitmq-client';
import {
  HEADERS,
  type DeadLetterQueues,
  type ParkedMessage,
  type ParkedSelection,
  type ParkReason,
} from '../transport.ts';

export const deadLetterQueueOf = (consumer: string) => `${consumer}.dlq`;
export const retryQueueOf = (consumer: string, step: number) => `${consumer}.retry.${step}`;

/**
 * The dead-letter queues on RabbitMQ. Reading a queue takes its messages with basic.get on
 * a channel of its own; those not acknowledged go back when the channel closes, in order.
 */
export function createAmqpDeadLetters(connection: Connection): DeadLetterQueues {
  const scan = (consumer: string, visit: Visit) => scanDeadLetters(connection, consumer, visit);

  return {
    async count(consumer) {
      // Asked on every scrape: fail at once while disconnected rather than wait for the broker.
      if (!connection.ready) throw new Error('RabbitMQ unreachable');
      const { messageCount } = await connection.queueDeclare({ queue: deadLetterQueueOf(consumer), durable: true });
      return messageCount;
    },

    async list(consumer) {
      const parked: ParkedMessage[] = [];
      await scan(consumer, async (message) => {
        parked.push(toParkedMessage(consumer, message));
      });
      return parked;
    },

    async replay(consumer, selection) {
      let replayed = 0;
      await scan(consumer, async (message, take, channel) => {
        if (!selected(message, selection)) return;
        const headers = { ...message.headers };
        for (const name of [
          HEADERS.attempt,
          HEADERS.parkReason,
          HEADERS.parkError,
          HEADERS.parkedAt,
          HEADERS.lastError,
        ])
          delete headers[name];
        await channel.basicPublish(
          { ...copyProperties(message), routingKey: consumer, headers },
          bodyBytes(message.body),
        );
        take();
        replayed += 1;
      });
      return replayed;
    },

    async purge(consumer, selection) {
      let purged = 0;
      await scan(consumer, async (message, take) => {
        if (!selected(message, selection)) return;
        take();
        purged += 1;
      });
      return purged;
    },
  };
}

type Visit = (message: SyncMessage, take: () => void, channel: Channel) => Promise<void>;

/** Visits every message parked at the start; `take` acknowledges (removes) one. */
async function scanDeadLetters(connection: Connection, consumer: string, visit: Visit): Promise<void> {
  const channel = await connection.acquire();
  try {
    await channel.confirmSelect();
    const queue = deadLetterQueueOf(consumer);
    const { messageCount } = await channel.queueDeclare({ queue, durable: true });
    for (let index = 0; index < messageCount; index += 1) {
      const message = await channel.basicGet({ queue });
      if (!message) break;
      await visit(message, () => channel.basicAck({ deliveryTag: message.deliveryTag }), channel);
    }
  } finally {
    await channel.close();
  }
}

function selected(message: SyncMessage, selection: ParkedSelection): boolean {
  return 'all' in selection || message.messageId === selection.id;
}

/** The id a parked message is known by: its event id, or one given when it was parked. */
export function parkedMessageId(messageId: string | undefined): string {
  return messageId ?? randomUUID();
}

/** A message's own properties, for the copy that moves it to another queue (persistent). */
export function copyProperties(
  message: Pick<SyncMessage, 'messageId' | 'type' | 'appId' | 'contentType' | 'timestamp'>,
) {
  return {
    durable: true,
    messageId: message.messageId,
    type: message.type,
    appId: message.appId,
    contentType: message.contentType,
    timestamp: message.timestamp,
  };
}

export function bodyBytes(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.from(JSON.stringify(body), 'utf8');
}

function toParkedMessage(consumer: string, message: SyncMessage): ParkedMessage {
  const headers = message.headers ?? {};
  const body: unknown = Buffer.isBuffer(message.body) ? message.body.toString('utf8') : message.body;
  const eventType = (body as { event_type?: unknown } | null | undefined)?.event_type;
  return {
    id: message.messageId ?? '',
    consumer,
    eventType: typeof eventType === 'string' ? eventType : null,
    attempts: Number(headers[HEADERS.attempt] ?? 1),
    // Only what the header says: a message parked by something else than a consumer (a
    // publish straight into the queue, a shovel) has no reason, and none is made up for it.
    reason: headers[HEADERS.parkReason] === undefined ? null : (String(headers[HEADERS.parkReason]) as ParkReason),
    error: String(headers[HEADERS.parkError] ?? ''),
    parkedAt: String(headers[HEADERS.parkedAt] ?? ''),
    body,
  };
}
