import type { Database, Queryable } from '../../db/database.ts';
import { migrate } from '../../db/migrate.ts';
import type { Logger } from '../../logger.ts';
import {
  DELIVERIES_EXCHANGE,
  EVENTS_EXCHANGE,
  type DeliveryReport,
  type EventTransport,
  type OutgoingMessage,
  type Subscription,
  type SubscriptionOptions,
} from '../transport.ts';
import { createDeadLetters } from './dead-letters.ts';
import { startQueueWorker, type QueueWorker } from './queue-worker.ts';
import { createRouter, type Router } from './router.ts';
import { migrations, SCHEMA } from './schema.ts';

/**
 * Embedded mode's broker: queues as rows in the embedded database. The relay hands each
 * batch over in the transaction that deletes it from the outbox (`handOver`), storing each
 * event in the queues bound to it, so a crash loses nothing; retries wait in their row
 * (`available_at`), parked messages stay until replayed or purged: the behaviour of the
 * RabbitMQ transport, in one process.
 */
export async function createInProcessTransport(options: { db: Database; log: Logger }): Promise<EventTransport> {
  const { db, log } = options;
  await migrate(db, SCHEMA, migrations);
  const workers = new Set<QueueWorker>();
  const wakeWorkers = () => workers.forEach((worker) => worker.wake());
  // The workers' queries wait for the storing transaction (PGlite runs one at a time): the rows are visible by then.
  const router = await createRouter(db, () => setImmediate(wakeWorkers));
  const report = (delivery: DeliveryReport, tx: Queryable) =>
    router.route(DELIVERIES_EXCHANGE, [reportMessage(delivery)], tx);

  return {
    kind: 'in-process',
    publish: (messages) => router.route(EVENTS_EXCHANGE, messages, db),
    handOver: (tx, messages) => router.route(EVENTS_EXCHANGE, messages, tx),
    subscribe: (subscription) => subscribe({ db, log, router, workers, subscription, report }),
    deadLetters: createDeadLetters(db, wakeWorkers),
    onReady(listener) {
      queueMicrotask(listener);
    },
    isReady: () => true,
    status: () => ({ ok: true, detail: 'in-process event transport (embedded database)' }),
    async close() {
      await Promise.all([...workers].map((worker) => worker.close()));
    },
  };
}

/** A consumer's queue: bound (recorded in the table), and a worker taking its messages. */
function subscribe(options: {
  db: Database;
  log: Logger;
  router: Router;
  workers: Set<QueueWorker>;
  subscription: SubscriptionOptions;
  report: (delivery: DeliveryReport, tx: Queryable) => Promise<void>;
}): Subscription {
  const { db, log, router, workers, subscription } = options;
  const declared = router.bind(subscription.queue, subscription.exchange ?? EVENTS_EXCHANGE, subscription.bindings);
  const report = subscription.reportOutcomes === false ? undefined : options.report;
  const worker = startQueueWorker({ db, log, subscription, report });
  workers.add(worker);
  declared.catch((error) => log.error({ err: error }, 'could not record the queue bindings'));
  return {
    ready: declared,
    async close() {
      workers.delete(worker);
      await declared.catch(() => undefined);
      await worker.close();
    },
  };
}

/** A delivery report as a message on `event-deliveries`, routed by the consumer's name. */
function reportMessage(report: DeliveryReport): OutgoingMessage {
  return {
    routingKey: report.consumer,
    messageId: `${report.event_id}:${report.consumer}:${report.attempt}:${report.status}`,
    type: 'delivery.report',
    appId: report.consumer,
    timestamp: new Date(report.at),
    body: Buffer.from(JSON.stringify(report)),
    headers: {},
  };
}
