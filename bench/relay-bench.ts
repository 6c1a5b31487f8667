import { Connection } from 'rabbitmq-client';
import { connectDatabase } from '../src/platform/db/connect.ts';
import type { Database } from '../src/platform/db/database.ts';
import { migrate } from '../src/platform/db/migrate.ts';
import { createAmqpTransport } from '../src/platform/events/amqp/amqp-transport.ts';
import { createEvent } from '../src/platform/events/envelope.ts';
import { createOutbox, outboxBacklog, outboxMigrations } from '../src/platform/events/outbox.ts';
import { createOutboxRelay } from '../src/platform/events/relay/relay.ts';
import { destination, pino } from 'pino';

const SCHEMA = 'bench_relay';
const ROUTING_KEY = 'bench.relay_event';
const SINK_QUEUE = 'bench.relay-sink';

/**
 * The relay scenario: N committed events drained from an outbox to RabbitMQ with confirms,
 * against the bare client publishing the same bodies with pipelined confirms.
 */
export async function createRelayBench(options: { databaseUrl: string; amqpUrl: string; events: number }) {
  const db = await connectDatabase({ databaseUrl: options.databaseUrl, poolSize: 4, dataDir: '/tmp' });
  await migrate(db, SCHEMA, outboxMigrations);
  const connection = new Connection({ url: options.amqpUrl, connectionName: 'bench' });
  // A queue takes the messages, as consumers' queues do; purged between rounds.
  await connection.queueDeclare({ queue: SINK_QUEUE, durable: false, arguments: { 'x-max-length': 1_000_000 } });
  await connection.exchangeDeclare({ exchange: 'events', type: 'topic', durable: true });
  await connection.queueBind({ queue: SINK_QUEUE, exchange: 'events', routingKey: ROUTING_KEY });
  const bodies = Array.from({ length: options.events }, (_, index) =>
    JSON.stringify(createEvent(ROUTING_KEY, { defect_id: index + 1, title: 'Трещина в опоре', updated_by: 1 }, 1)),
  );

  const fillOutbox = async () => {
    await db.query(`TRUNCATE ${SCHEMA}.outbox`);
    for (let start = 0; start < bodies.length; start += 5_000) {
      const chunk = bodies.slice(start, start + 5_000).map((body) => JSON.parse(body));
      await db.query(
        `INSERT INTO ${SCHEMA}.outbox (event_id, event_type, body) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])`,
        [chunk.map((e) => e.event_id), chunk.map(() => ROUTING_KEY), chunk.map((e) => JSON.stringify(e))],
      );
    }
  };

  return {
    /** Events per second the relay drained. */
    async runRelay(): Promise<number> {
      await fillOutbox();
      await connection.queuePurge({ queue: SINK_QUEUE });
      // At info, as in production: the seed's [EVENT] line is part of the relay's work.
      const log = pino({ level: 'info' }, destination('/dev/null'));
      const transport = createAmqpTransport({ url: options.amqpUrl, log, connectionName: 'bench-relay' });
      const outbox = createOutbox({ db, schema: SCHEMA });
      const relay = createOutboxRelay({ db, outbox, transport, log, appId: 'bench' });
      // Connected before the clock starts, as the baseline's client is.
      await waitUntil(async () => transport.isReady());
      const started = performance.now();
      relay.start();
      await waitUntil(async () => (await outboxBacklog(db, SCHEMA)).pending === 0);
      const seconds = (performance.now() - started) / 1000;
      await relay.close();
      await transport.close();
      return options.events / seconds;
    },

    /** Events per second the bare client published, confirms pipelined (a window of 500 in flight). */
    async runBaseline(): Promise<number> {
      await connection.queuePurge({ queue: SINK_QUEUE });
      const publisher = connection.createPublisher({ confirm: true });
      const started = performance.now();
      for (let start = 0; start < bodies.length; start += 500) {
        await Promise.all(
          bodies
            .slice(start, start + 500)
            .map((body) =>
              publisher.send(
                { exchange: 'events', routingKey: ROUTING_KEY, durable: true, contentType: 'application/json' },
                Buffer.from(body),
              ),
            ),
        );
      }
      const seconds = (performance.now() - started) / 1000;
      await publisher.close();
      return options.events / seconds;
    },

    async close() {
      await connection.queueDelete({ queue: SINK_QUEUE });
      await connection.close();
      await dropSchema(db);
      await db.close();
    },
  };
}

async function dropSchema(db: Database) {
  await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
}

/** Checked every 5 ms: a coarser poll would add its wait to a run of about a second. */
async function waitUntil(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 5));
}
