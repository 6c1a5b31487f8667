import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { connectDatabase } from '../../src/platform/db/connect.ts';
import type { Database } from '../../src/platform/db/database.ts';
import { migrate } from '../../src/platform/db/migrate.ts';
import { createAmqpTransport } from '../../src/platform/events/amqp/amqp-transport.ts';
import { createEvent } from '../../src/platform/events/envelope.ts';
import { createOutbox, outboxMigrations, type Outbox } from '../../src/platform/events/outbox.ts';
import { createOutboxRelay, type OutboxRelay } from '../../src/platform/events/relay/relay.ts';
import type { EventTransport } from '../../src/platform/events/transport.ts';
import { bindTestQueue, type TestQueue } from '../support/broker.ts';
import { TEST_AMQP_URL, TEST_POSTGRES_URL } from '../support/environment.ts';
import { captureLogs } from '../support/log-capture.ts';
import { eventually } from '../support/test-system.ts';

const SCHEMA = 'relay_test';
// An event type of the contract: the outbox takes no other. Each event's label is its `name`.
const EVENT_TYPE = 'project.updated';

/** One replica of a publishing service: its outbox object, its transport, its relay. */
interface Replica {
  outbox: Outbox;
  transport: EventTransport;
  relay: OutboxRelay;
}

/** The `label`s of the published events, in the order the broker delivered them. */
const labelsOf = (queue: TestQueue) =>
  queue.messages.map((message) => (message.body as { data: { name: string } }).data.name);

describe('outbox relay (PostgreSQL, RabbitMQ)', () => {
  const databaseName = `dc_relay_${process.pid}_${Date.now()}`;
  const databaseUrl = `${TEST_POSTGRES_URL}/${databaseName}`;
  let db: Database;
  let queue: TestQueue;
  const replicas: Replica[] = [];

  const startReplica = (options: { maxBurstMs?: number } = {}): Replica => {
    const log = captureLogs('fatal').log;
    const outbox = createOutbox({ db, schema: SCHEMA });
    const transport = createAmqpTransport({ url: TEST_AMQP_URL, log, connectionName: 'relay-test' });
    const relay = createOutboxRelay({
      db,
      outbox,
      transport,
      log,
      appId: 'relay-test',
      batchSize: 50,
      maxInFlight: 200,
      ...options,
    });
    relay.start();
    const replica = { outbox, transport, relay };
    replicas.push(replica);
    return replica;
  };

  const commit = (replica: Replica, label: string) =>
    replica.outbox.transaction({ userId: 1 }, async (_tx, events) => {
      events.add(EVENT_TYPE, { project_id: 1, name: label, updated_by: 1 });
    });

  const outboxRows = async () =>
    (await db.query<{ rows: number }>(`SELECT count(*)::int AS rows FROM ${SCHEMA}.outbox`)).rows[0].rows;

  before(async () => {
    db = await connectDatabase({ databaseUrl, poolSize: 6, dataDir: os.tmpdir() });
    await migrate(db, SCHEMA, outboxMigrations);
  });

  const stopReplicas = async () => {
    for (const replica of replicas.splice(0)) {
      await replica.relay.close();
      await replica.transport.close();
    }
  };

  after(async () => {
    await stopReplicas();
    await queue?.close();
    await db?.close();
    const admin = new pg.Client({ connectionString: `${TEST_POSTGRES_URL}/postgres` });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    await admin.end();
  });

  it('when two replicas commit events one after another, then each event is published once, in commit order, and leaves the outbox', async () => {
    queue = await bindTestQueue([EVENT_TYPE]);
    const first = startReplica();
    const second = startReplica();
    const labels = Array.from({ length: 300 }, (_, index) => `e${index}`);
    for (const [index, label] of labels.entries()) await commit(index % 2 === 0 ? first : second, label);

    await queue.waitFor(labels.length, 20_000);
    // A duplicate comes from a row published and not yet deleted: none is left once the
    // outbox is empty, and what was published arrived before a marker sent then.
    await queue.settle(db);
    assert.deepEqual(labelsOf(queue), labels);
    assert.equal(await outboxRows(), 0, 'an empty outbox');
    await queue.close();
    await stopReplicas();
  });

  it('when a transaction commits a row after the relay has passed its id, then that late row is published before the events that follow it', async () => {
    queue = await bindTestQueue([EVENT_TYPE]);
    // One burst for the whole test: the relay never starts over from the oldest row by itself.
    const replica = startReplica({ maxBurstMs: 60_000 });

    // A stream of commits keeps the relay publishing (one burst) throughout.
    let streaming = true;
    const stream = (async () => {
      for (let index = 0; streaming; index += 1) await commit(replica, `s${index}`);
    })();

    // The late transaction takes its id now and commits only after the relay read past it.
    const late = new pg.Client({ connectionString: databaseUrl });
    await late.connect();
    await late.query('BEGIN');
    const lateEvent = createEvent(EVENT_TYPE, { project_id: 1, name: 'late', updated_by: 1 }, 1);
    await late.query(`INSERT INTO ${SCHEMA}.outbox (event_id, event_type, body) VALUES ($1, $2, $3)`, [
      lateEvent.event_id,
      EVENT_TYPE,
      JSON.stringify(lateEvent),
    ]);
    await queue.waitFor(queue.messages.length + 10, 10_000); // the relay has published rows with higher ids
    await late.query('COMMIT');
    await late.end();
    // Committed after the late row, as a second change to the same record would be.
    await commit(replica, 'after-late');
    // The stream goes on until the relay has published 'after-late', so that it does so in
    // the burst that had passed the late row (an outbox it found empty would end the burst).
    await eventually(() => labelsOf(queue).includes('after-late'), 10_000, "'after-late' published");
    streaming = false;
    await stream;

    await eventually(
      () => labelsOf(queue).includes('after-late') && labelsOf(queue).includes('late'),
      10_000,
      'both events',
    );
    // As above: an empty outbox, then a marker, and no copy can still come.
    await queue.settle(db);
    const published = labelsOf(queue);
    assert.ok(
      published.indexOf('late') < published.indexOf('after-late'),
      `the late row first: ${published.join(' ')}`,
    );
    assert.equal(new Set(published).size, published.length, 'each event once');
    assert.equal(await outboxRows(), 0, 'an empty outbox');
  });
});
