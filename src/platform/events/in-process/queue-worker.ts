import type { Database, Queryable } from '../../db/database.ts';
import type { Logger } from '../../logger.ts';
import { createWakeableLoop, type LoopSignal } from '../../wakeable-loop.ts';
import {
  deliveryReport,
  type DeliveryOutcome,
  type DeliveryReport,
  type Subscription,
  type SubscriptionOptions,
} from '../transport.ts';
import { parseOrText, SCHEMA, type DeliveryRow } from './schema.ts';

export interface QueueWorker extends Pick<Subscription, 'close'> {
  wake(): void;
}

export interface QueueWorkerOptions {
  db: Database;
  log: Logger;
  subscription: SubscriptionOptions;
  /** Publishes the outcome's delivery report through the outcome's transaction. */
  report?: (report: DeliveryReport, tx: Queryable) => Promise<void>;
}

/** Takes a queue's due rows one batch at a time and carries out each outcome in its row. */
export function startQueueWorker(options: QueueWorkerOptions): QueueWorker {
  const { db, subscription } = options;
  const { queue } = subscription;
  let dueTimer: NodeJS.Timeout | undefined;

  /** Wakes the worker when the queue's next retry becomes due. */
  const scheduleNextRetry = async () => {
    const { rows } = await db.query<{ wait_ms: number }>(
      `SELECT greatest(0, extract(epoch FROM min(available_at) - now()) * 1000)::int AS wait_ms
       FROM ${SCHEMA}.deliveries WHERE queue = $1 AND parked_at IS NULL`,
      [queue],
    );
    const waitMs = rows[0]?.wait_ms;
    clearTimeout(dueTimer);
    if (waitMs !== null && waitMs !== undefined && !loop.closed)
      dueTimer = setTimeout(loop.wake, Math.max(waitMs, 5)).unref();
  };

  const loop = createWakeableLoop({
    async run(signal) {
      await handleDue(options, signal);
      // Woken meanwhile: the next pass comes at once and schedules then.
      if (!signal.woken && !signal.closed) await scheduleNextRetry();
    },
    retryDelayMs: 1_000,
    onError: (error) => options.log.error({ err: error, queue }, 'in-process queue worker failed; retrying in 1 s'),
  });

  loop.wake();
  return {
    wake: loop.wake,
    async close() {
      clearTimeout(dueTimer);
      await loop.close();
    },
  };
}

/** Handles the due rows, a batch at a time, until none are due or the worker closes. */
async function handleDue(options: QueueWorkerOptions, signal: LoopSignal): Promise<void> {
  const { subscription } = options;
  for (let batch = await due(options); batch.length > 0 && !signal.closed; batch = await due(options)) {
    // Up to `prefetch` in hand at once, as on RabbitMQ; outcomes carried out in order.
    const outcomes = await Promise.all(
      batch.map((row) =>
        subscription.handle({
          routingKey: row.routing_key,
          body: parseOrText(row.body),
          headers: row.headers,
          messageId: row.message_id,
          attempt: row.attempt,
        }),
      ),
    );
    for (const [index, row] of batch.entries()) await carryOut(options, row, outcomes[index]);
    if (signal.closed) return;
  }
}

async function due({ db, subscription }: QueueWorkerOptions): Promise<DeliveryRow[]> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT id, routing_key, message_id, body, headers, attempt FROM ${SCHEMA}.deliveries
     WHERE queue = $1 AND parked_at IS NULL AND available_at <= now() ORDER BY id LIMIT $2`,
    [subscription.queue, subscription.prefetch],
  );
  return rows;
}

/** The outcome and its report commit together. */
function carryOut(
  { db, subscription, report }: QueueWorkerOptions,
  row: DeliveryRow,
  outcome: DeliveryOutcome,
): Promise<void> {
  return db.transaction(async (tx) => {
    if (outcome.kind === 'ack') {
      await tx.query(`DELETE FROM ${SCHEMA}.deliveries WHERE id = $1`, [row.id]);
    } else if (outcome.kind === 'retry') {
      await tx.query(
        `UPDATE ${SCHEMA}.deliveries SET attempt = attempt + 1, last_error = $2,
           available_at = now() + make_interval(secs => $3::double precision / 1000) WHERE id = $1`,
        [row.id, outcome.error, outcome.delayMs],
      );
    } else {
      await tx.query(
        `UPDATE ${SCHEMA}.deliveries SET parked_at = now(), park_reason = $2, last_error = $3 WHERE id = $1`,
        [row.id, outcome.reason, outcome.error],
      );
    }
    await report?.(
      deliveryReport(
        subscription.queue,
        { messageId: row.message_id, routingKey: row.routing_key, attempt: row.attempt },
        outcome,
      ),
      tx,
    );
  });
}
