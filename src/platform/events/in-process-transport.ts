import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.ts';
import {
  topicMatches,
  type EventTransport,
  type IncomingMessage,
  type OutgoingMessage,
  type SubscriptionOptions,
} from './transport.ts';

const REDELIVERY_DELAY_MS = 1_000;

interface LocalQueue {
  options: SubscriptionOptions;
  pending: IncomingMessage[];
  inFlight: number;
  closed: boolean;
  idle: Array<() => void>;
}

/**
 * Embedded mode's broker: topic routing to in-memory queues inside this process, with the
 * same acknowledge-after-handled contract as the AMQP transport. The outbox stays the
 * durable record; a queue's in-flight messages are only as durable as the process.
 */
export function createInProcessTransport(options: { log: Logger }): EventTransport {
  const queues: LocalQueue[] = [];
  const readyListeners: Array<() => void> = [];

  const pump = (queue: LocalQueue) => {
    while (!queue.closed && queue.inFlight < queue.options.prefetch && queue.pending.length > 0) {
      const message = queue.pending.shift()!;
      queue.inFlight += 1;
      void deliver(queue, message).finally(() => {
        queue.inFlight -= 1;
        if (queue.inFlight === 0) queue.idle.splice(0).forEach((resolve) => resolve());
        pump(queue);
      });
    }
  };

  const deliver = async (queue: LocalQueue, message: IncomingMessage) => {
    try {
      await queue.options.handle(message);
    } catch (error) {
      options.log.warn({ err: error, queue: queue.options.queue }, 'handler failed; message will be delivered again');
      await sleep(REDELIVERY_DELAY_MS);
      queue.pending.push({ ...message, redelivered: true });
    }
  };

  return {
    kind: 'in-process',
    async publish(messages: OutgoingMessage[]) {
      for (const message of messages) {
        const body = JSON.parse(message.body.toString('utf8'));
        for (const queue of queues) {
          if (queue.closed || !queue.options.bindings.some((pattern) => topicMatches(pattern, message.routingKey))) continue;
          queue.pending.push({ routingKey: message.routingKey, body, headers: { ...message.headers }, redelivered: false });
          pump(queue);
        }
      }
    },
    subscribe(subscription) {
      const queue: LocalQueue = { options: subscription, pending: [], inFlight: 0, closed: false, idle: [] };
      queues.push(queue);
      return {
        async close() {
          queue.closed = true;
          if (queue.inFlight > 0) await new Promise<void>((resolve) => queue.idle.push(resolve));
        },
      };
    },
    onReady(listener) {
      readyListeners.push(listener);
      queueMicrotask(listener);
    },
    isReady: () => true,
    status: () => ({ ok: true, detail: 'in-process event transport' }),
    async close() {
      await Promise.all(queues.map((queue) => { queue.closed = true; return Promise.resolve(); }));
    },
  };
}
