import type { Database, Queryable } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import type { Logger } from '../logger.ts';
import {
  deliveryReport,
  DELIVERIES_EXCHANGE,
  EVENTS_EXCHANGE,
  HEADERS,
  topicMatches,
  type DeliveryReport,
  type DeadLetterQueues,
  type DeliveryOutcome,
  type EventTransport,
  type OutgoingMessage,
  type ParkedMessage,
  type ParkedSelection,
  type Subscription,
  type SubscriptionOptions,
} from './transport.ts';

const SCHEMA = 'event_transport';

const migrations = [
  {
    id: 'event-transport-1',
    sql: `
      -- A consumer's queue exists once it subscribed: from then on events routed to it wait here.
      CREATE TABLE {schema}.bindings (
        queue text NOT NULL,
        pattern text NOT NULL,
        PRIMARY KEY (queue, pattern)
      );
      CREATE TABLE {schema}.deliveries (
        id bigserial PRIMARY KEY,
        queue text NOT NULL,
        routing_key text NOT NULL,
        message_id text NOT NULL,
        body text NOT NULL,
        headers jsonb NOT NULL DEFAULT '{}',
        attempt integer NOT NULL DEFAULT 1,
        available_at timestamptz NOT NULL DEFAULT now(),
        last_error text,
        parked_at timestamptz,
        park_reason text,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX deliveries_due ON {schema}.deliveries (queue, available_at, id) WHERE parked_at IS NULL;
    `,
  },
  {
    id: 'event-transport-2',
    sql: `ALTER TABLE {schema}.bindings ADD COLUMN exchange text NOT NULL DEFAULT '${EVENTS_EXCHANGE}';`,
  },
];

interface DeliveryRow {
  id: number;
  routing_key: string;
  message_id: string;
  body: string;
  headers: Record<string, unknown>;
  attempt: number;
}

/**
 * Embedded mode's broker: queues as rows in the embedded database. The relay stores each
 * event in the queues bound to it in the same transaction that marks it published, so a
 * crash loses nothing; retries wait in their row (`available_at`), parked messages stay
 * until replayed or purged: the behaviour of the RabbitMQ transport, in one process.
 */
export async function createInProcessTransport(options: { db: Database; log: Logger }): Promise<EventTransport> {
  const { db, log } = options;
  await migrate(db, SCHEMA, migrations);
  const bindings = new Map<string, { exchange: string; patterns: string[] }>();
  const bindingRows = await db.query<{ queue: string; pattern: string; exchange: string }>(`SELECT queue, pattern, exchange FROM ${SCHEMA}.bindings`);
  for (const row of bindingRows.rows) {
    bindings.set(row.queue, { exchange: row.exchange, patterns: [...(bindings.get(row.queue)?.patterns ?? []), row.pattern] });
  }
  const workers = new Set<QueueWorker>();

  /** Stores each message in every queue bound to it, in tx: delivered once tx commits. */
  const route = async (exchange: string, messages: OutgoingMessage[], tx: Queryable) => {
    const rows = messages.flatMap((message) =>
      [...bindings]
        .filter(([, binding]) => binding.exchange === exchange && binding.patterns.some((pattern) => topicMatches(pattern, message.routingKey)))
        .map(([queue]) => ({ queue, message })),
    );
    if (rows.length === 0) return;
    await tx.query(
      `INSERT INTO ${SCHEMA}.deliveries (queue, routing_key, message_id, body, headers)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])`,
      [
        rows.map((row) => row.queue),
        rows.map((row) => row.message.routingKey),
        rows.map((row) => row.message.messageId),
        rows.map((row) => row.message.body.toString('utf8')),
        rows.map((row) => JSON.stringify(row.message.headers)),
      ],
    );
    // Their queries wait for tx (PGlite runs one at a time): the rows are visible by then.
    setImmediate(() => workers.forEach((worker) => worker.wake()));
  };

  const report = (report: DeliveryReport, tx: Queryable) =>
    route(DELIVERIES_EXCHANGE, [{
      routingKey: report.consumer,
      messageId: `${report.event_id}:${report.consumer}:${report.attempt}:${report.status}`,
      type: 'delivery.report',
      appId: report.consumer,
      timestamp: new Date(report.at),
      body: Buffer.from(JSON.stringify(report)),
      headers: {},
    }], tx);

  const transport: EventTransport = {
    kind: 'in-process',
    publish: (messages, connection) => route(EVENTS_EXCHANGE, messages, connection),
    subscribe(subscription) {
      const exchange = subscription.exchange ?? EVENTS_EXCHANGE;
      bindings.set(subscription.queue, { exchange, patterns: subscription.bindings });
      const worker = startQueueWorker({ db, log, subscription, report: subscription.reportOutcomes === false ? undefined : report });
      workers.add(worker);
      const declared = db.transaction(async (tx) => {
        await tx.query(`DELETE FROM ${SCHEMA}.bindings WHERE queue = $1`, [subscription.queue]);
        for (const pattern of subscription.bindings) {
          await tx.query(`INSERT INTO ${SCHEMA}.bindings (queue, pattern, exchange) VALUES ($1, $2, $3)`, [subscription.queue, pattern, exchange]);
        }
      });
      declared.catch((error) => log.error({ err: error }, 'could not record the queue bindings'));
      return {
        ready: declared,
        async close() {
          workers.delete(worker);
          await declared.catch(() => undefined);
          await worker.close();
        },
      };
    },
    deadLetters: createDeadLetters(db, () => workers.forEach((worker) => worker.wake())),
    onReady(listener) {
      queueMicrotask(listener);
    },
    isReady: () => true,
    status: () => ({ ok: true, detail: 'in-process event transport (embedded database)' }),
    async close() {
      await Promise.all([...workers].map((worker) => worker.close()));
    },
  };
  return transport;
}

interface QueueWorker extends Pick<Subscription, "close"> {
  wake(): void;
}

/** Takes a queue's due rows one batch at a time and carries out each outcome in its row. */
function startQueueWorker(options: {
  db: Database;
  log: Logger;
  subscription: SubscriptionOptions;
  report?: (report: DeliveryReport, tx: Queryable) => Promise<void>;
}): QueueWorker {
  const { db, subscription } = options;
  const { queue } = subscription;
  let running: Promise<void> | undefined;
  let wokenWhileRunning = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const due = () =>
    db.query<DeliveryRow>(
      `SELECT id, routing_key, message_id, body, headers, attempt FROM ${SCHEMA}.deliveries
       WHERE queue = $1 AND parked_at IS NULL AND available_at <= now() ORDER BY id LIMIT $2`,
      [queue, subscription.prefetch],
    );

  /** The outcome and its report commit together. */
  const carryOut = (row: DeliveryRow, outcome: DeliveryOutcome) =>
    db.transaction(async (tx) => {
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
      await options.report?.(
        deliveryReport(queue, { messageId: row.message_id, routingKey: row.routing_key, attempt: row.attempt }, outcome),
        tx,
      );
    });

  const scheduleNextRetry = async () => {
    const { rows } = await db.query<{ wait_ms: number }>(
      `SELECT greatest(0, extract(epoch FROM min(available_at) - now()) * 1000)::int AS wait_ms
       FROM ${SCHEMA}.deliveries WHERE queue = $1 AND parked_at IS NULL`,
      [queue],
    );
    const waitMs = rows[0]?.wait_ms;
    clearTimeout(timer);
    if (waitMs !== null && waitMs !== undefined && !closed) timer = setTimeout(wake, Math.max(waitMs, 5)).unref();
  };

  const drain = async () => {
    do {
      wokenWhileRunning = false;
      for (let batch = (await due()).rows; batch.length > 0 && !closed; batch = (await due()).rows) {
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
        for (const [index, row] of batch.entries()) await carryOut(row, outcomes[index]);
        if (closed) return;
      }
    } while (wokenWhileRunning && !closed);
    await scheduleNextRetry();
  };

  const wake = () => {
    if (closed) return;
    if (running) {
      wokenWhileRunning = true;
      return;
    }
    running = drain()
      .catch((error) => {
        options.log.error({ err: error, queue }, 'in-process queue worker failed; retrying in 1 s');
        timer = setTimeout(wake, 1_000).unref();
      })
      .finally(() => {
        running = undefined;
      });
  };

  wake();
  return {
    wake,
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}

function createDeadLetters(db: Database, wakeWorkers: () => void): DeadLetterQueues {
  const where = (selection: ParkedSelection) =>
    'all' in selection ? { sql: '', params: [] as string[] } : { sql: ' AND message_id = $2', params: [selection.id] };

  return {
    async count(consumer) {
      const { rows } = await db.query<{ count: number }>(
        `SELECT count(*)::int AS count FROM ${SCHEMA}.deliveries WHERE queue = $1 AND parked_at IS NOT NULL`,
        [consumer],
      );
      return rows[0].count;
    },
    async list(consumer) {
      const { rows } = await db.query<DeliveryRow & { park_reason: string; last_error: string; parked_at: Date }>(
        `SELECT id, routing_key, message_id, body, headers, attempt, park_reason, last_error, parked_at
         FROM ${SCHEMA}.deliveries WHERE queue = $1 AND parked_at IS NOT NULL ORDER BY parked_at, id`,
        [consumer],
      );
      return rows.map((row): ParkedMessage => {
        const body = parseOrText(row.body);
        return {
          id: row.message_id,
          consumer,
          eventType: typeof (body as any)?.event_type === 'string' ? (body as any).event_type : null,
          attempts: row.attempt,
          reason: row.park_reason as ParkedMessage['reason'],
          error: row.last_error ?? '',
          parkedAt: row.parked_at.toISOString(),
          body,
        };
      });
    },
    async replay(consumer, selection) {
      const filter = where(selection);
      const { rowCount } = await db.query(
        `UPDATE ${SCHEMA}.deliveries SET parked_at = NULL, park_reason = NULL, attempt = 1, available_at = now(),
           headers = headers - '${HEADERS.attempt}'
         WHERE queue = $1 AND parked_at IS NOT NULL${filter.sql}`,
        [consumer, ...filter.params],
      );
      wakeWorkers();
      return rowCount;
    },
    async purge(consumer, selection) {
      const filter = where(selection);
      const { rowCount } = await db.query(
        `DELETE FROM ${SCHEMA}.deliveries WHERE queue = $1 AND parked_at IS NOT NULL${filter.sql}`,
        [consumer, ...filter.params],
      );
      return rowCount;
    },
  };
}

function parseOrText(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
