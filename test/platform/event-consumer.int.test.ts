import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { connectDatabase } from '../../src/platform/db/connect.ts';
import type { Database } from '../../src/platform/db/database.ts';
import { migrate } from '../../src/platform/db/migrate.ts';
import { createAmqpTransport } from '../../src/platform/events/amqp/amqp-transport.ts';
import { createEvent } from '../../src/platform/events/envelope.ts';
import {
  inboxMigration,
  PermanentFailure,
  startEventConsumer,
  type EventHandler,
} from '../../src/platform/events/event-consumer.ts';
import { createInProcessTransport } from '../../src/platform/events/in-process/transport.ts';
import type {
  DeliveryOutcome,
  EventTransport,
  OutgoingMessage,
  Subscription,
} from '../../src/platform/events/transport.ts';
import { deleteQueues, startTcpProxy, withBroker } from '../support/broker.ts';
import { amqpUrlThroughPort, TEST_AMQP_URL, TEST_POSTGRES_URL, testBrokerAddress } from '../support/environment.ts';
import { captureLogs } from '../support/log-capture.ts';
import { eventually } from '../support/test-system.ts';

const SCHEMA = 'consumer_test';
const CONSUMER = 'test.runtime-consumer';
const RETRY_DELAYS = [100, 200];
// A type of the contract (consumers check data against it); each event's item is its defect_id.
const EVENT_TYPE = 'defect.updated';

interface Fixture {
  db: Database;
  transport: EventTransport;
  publish(messages: OutgoingMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** A database with an inbox and an `effects` table, and a transport: RabbitMQ or in-process. */
async function createFixture(kind: 'amqp' | 'in-process', amqpUrl = TEST_AMQP_URL): Promise<Fixture> {
  const logs = captureLogs('warn');
  if (kind === 'amqp') {
    const name = `dc_consumer_${process.pid}_${Date.now()}`;
    const db = await connectDatabase({
      databaseUrl: `${TEST_POSTGRES_URL}/${name}`,
      poolSize: 4,
      dataDir: os.tmpdir(),
    });
    await prepareSchema(db);
    const transport = createAmqpTransport({ url: amqpUrl, log: logs.log, connectionName: 'consumer-test' });
    return {
      db,
      transport,
      publish: (messages) => transport.publish(messages),
      async close() {
        await transport.close();
        await db.close();
        const admin = new pg.Client({ connectionString: `${TEST_POSTGRES_URL}/postgres` });
        await admin.connect();
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.end();
      },
    };
  }
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-consumer-'));
  const db = await connectDatabase({ poolSize: 1, dataDir });
  await prepareSchema(db);
  const transport = await createInProcessTransport({ db, log: logs.log });
  return {
    db,
    transport,
    publish: (messages) => db.transaction((tx) => transport.handOver!(tx, messages)),
    async close() {
      await transport.close();
      await db.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** What a transport handed to its subscribers, seen before the consumer's inbox. */
interface ObservedDeliveries {
  /** The transport, with every subscriber's deliveries observed. */
  transport: EventTransport;
  /** How many times the message was handed to a subscriber. */
  handedOver(messageId: string): number;
  /** The outcomes of its deliveries whose handling finished (the effect committed), in order. */
  outcomes(messageId: string): Array<DeliveryOutcome['kind']>;
  /** Deliveries handed over and not finished yet. */
  inHand(): number;
}

/**
 * Observes every delivery at the transport: the consumer's inbox turns a repeated delivery
 * into a no-op its handler never sees, so only here can a test tell that a message came again.
 */
function observeDeliveries(transport: EventTransport): ObservedDeliveries {
  const handedOver = new Map<string, number>();
  const outcomes = new Map<string, Array<DeliveryOutcome['kind']>>();
  let inHand = 0;
  return {
    transport: {
      ...transport,
      subscribe: (options) =>
        transport.subscribe({
          ...options,
          async handle(message) {
            const id = String(message.messageId);
            handedOver.set(id, (handedOver.get(id) ?? 0) + 1);
            inHand += 1;
            try {
              const outcome = await options.handle(message);
              outcomes.set(id, [...(outcomes.get(id) ?? []), outcome.kind]);
              return outcome;
            } finally {
              inHand -= 1;
            }
          },
        }),
    },
    handedOver: (messageId) => handedOver.get(messageId) ?? 0,
    outcomes: (messageId) => outcomes.get(messageId) ?? [],
    inHand: () => inHand,
  };
}

async function prepareSchema(db: Database) {
  await migrate(db, SCHEMA, [
    inboxMigration,
    { id: 'effects', sql: 'CREATE TABLE {schema}.effects (event_id uuid NOT NULL, item integer NOT NULL)' },
  ]);
}

function eventMessage(item: number) {
  const event = createEvent(EVENT_TYPE, { defect_id: item, title: `Элемент ${item}`, updated_by: 1 }, 1);
  const message: OutgoingMessage = {
    routingKey: EVENT_TYPE,
    messageId: event.event_id,
    type: EVENT_TYPE,
    appId: 'test',
    timestamp: new Date(),
    body: Buffer.from(JSON.stringify(event)),
    headers: { 'x-request-id': `req-${item}` },
  };
  return { event, message };
}

const recordEffect: EventHandler<typeof EVENT_TYPE> = async (tx, event) => {
  await tx.query(`INSERT INTO ${SCHEMA}.effects (event_id, item) VALUES ($1, $2)`, [
    event.event_id,
    event.data.defect_id,
  ]);
};

async function effects(db: Database): Promise<number[]> {
  const { rows } = await db.query<{ item: number }>(`SELECT item FROM ${SCHEMA}.effects ORDER BY item`);
  return rows.map((row) => row.item);
}

for (const kind of ['amqp', 'in-process'] as const) {
  describe(`event consumer runtime (${kind})`, () => {
    let fixture: Fixture;
    let deliveries: ObservedDeliveries;
    let subscription: Subscription | undefined;
    const subscribe = async (
      handler: EventHandler<typeof EVENT_TYPE>,
      options: { maxEventsPerTransaction?: number } = {},
    ) => {
      subscription = startEventConsumer({
        db: fixture.db,
        transport: deliveries.transport,
        log: captureLogs('fatal').log,
        schema: SCHEMA,
        name: CONSUMER,
        handlers: { [EVENT_TYPE]: handler },
        retryDelaysMs: RETRY_DELAYS,
        prefetch: 5,
        ...options,
      });
      await subscription.ready;
    };

    before(async () => {
      if (kind === 'amqp')
        await deleteQueues([CONSUMER, `${CONSUMER}.dlq`, `${CONSUMER}.retry.1`, `${CONSUMER}.retry.2`]);
      fixture = await createFixture(kind);
      deliveries = observeDeliveries(fixture.transport);
    });
    afterEach(async () => {
      await subscription?.close();
      subscription = undefined;
      await fixture.transport.deadLetters.purge(CONSUMER, { all: true });
      await fixture.db.query(`DELETE FROM ${SCHEMA}.effects`);
    });
    after(async () => {
      await fixture?.close();
    });

    it('when a handler fails twice, then the event is retried after growing delays and handled once', async () => {
      const attempts: Array<{ attempt: number; at: number }> = [];
      await subscribe(async (tx, event, context) => {
        attempts.push({ attempt: context.attempt, at: Date.now() });
        if (context.attempt < 3) throw new Error(`transient failure ${context.attempt}`);
        await recordEffect(tx, event, context);
      });
      await fixture.publish([eventMessage(1).message]);
      await eventually(async () => (await effects(fixture.db)).length === 1, 10_000, 'the effect');
      assert.deepEqual(
        attempts.map((a) => a.attempt),
        [1, 2, 3],
      );
      assert.ok(attempts[1].at - attempts[0].at >= RETRY_DELAYS[0] * 0.8, 'first delay kept');
      assert.ok(attempts[2].at - attempts[1].at >= RETRY_DELAYS[1] * 0.8, 'second delay kept');
      assert.deepEqual(await fixture.transport.deadLetters.list(CONSUMER), []);
    });

    it('when a handler fails on every attempt, then the message is parked with its reason, and a replay after the fix handles it once', async () => {
      let broken = true;
      await subscribe(async (tx, event, context) => {
        if (broken) throw new Error('downstream refused');
        await recordEffect(tx, event, context);
      });
      const { event, message } = eventMessage(2);
      await fixture.publish([message]);
      const [parked] = await eventually(
        async () => {
          const list = await fixture.transport.deadLetters.list(CONSUMER);
          return list.length === 1 ? list : undefined;
        },
        10_000,
        'the parked message',
      );
      assert.equal(parked.id, event.event_id);
      assert.equal(parked.reason, 'retries_exhausted');
      assert.equal(parked.attempts, RETRY_DELAYS.length + 1);
      assert.match(parked.error, /downstream refused/);
      assert.equal(parked.eventType, EVENT_TYPE);
      assert.deepEqual(await effects(fixture.db), []);

      broken = false;
      assert.equal(await fixture.transport.deadLetters.replay(CONSUMER, { id: event.event_id }), 1);
      await eventually(async () => (await effects(fixture.db)).length === 1, 10_000, 'the replayed effect');
      assert.deepEqual(await fixture.transport.deadLetters.list(CONSUMER), []);

      // Delivering an event that was meanwhile handled has no second effect (the inbox).
      const finishedBefore = deliveries.outcomes(event.event_id).length;
      await fixture.publish([message]);
      await eventually(
        () => deliveries.outcomes(event.event_id).length === finishedBefore + 1,
        5_000,
        'the repeat delivered and finished',
      );
      assert.equal(deliveries.outcomes(event.event_id).at(-1), 'ack');
      assert.deepEqual(await effects(fixture.db), [2]);
    });

    it('when a handler reports a permanent failure, then the message is parked at once', async () => {
      let calls = 0;
      await subscribe(async () => {
        calls += 1;
        throw new PermanentFailure('this event can never be handled');
      });
      await fixture.publish([eventMessage(3).message]);
      const [parked] = await eventually(
        async () => {
          const list = await fixture.transport.deadLetters.list(CONSUMER);
          return list.length === 1 ? list : undefined;
        },
        5_000,
        'the parked message',
      );
      assert.equal(parked.reason, 'permanent_failure');
      assert.equal(parked.attempts, 1);
      assert.equal(calls, 1);
    });

    it('when events arrive together, then they share a transaction in arrival order; when one fails, only it retries and its handler runs once per attempt', async () => {
      const calls: Array<{ item: number; attempt: number }> = [];
      const committed: Array<{ item: number; transaction: string }> = [];
      await subscribe(
        async (tx, event, context) => {
          calls.push({ item: event.data.defect_id, attempt: context.attempt });
          if (event.data.defect_id === 13 && context.attempt === 1) throw new Error('item 13 fails once');
          await recordEffect(tx, event, context);
          const { rows } = await tx.query<{ transaction: string }>('SELECT txid_current()::text AS transaction');
          context.afterCommit(() => committed.push({ item: event.data.defect_id, transaction: rows[0].transaction }));
        },
        { maxEventsPerTransaction: 10 },
      );
      const items = [11, 12, 13, 14, 15, 16];
      await fixture.publish(items.map((item) => eventMessage(item).message));
      await eventually(async () => (await effects(fixture.db)).length === items.length, 10_000, 'every effect');

      assert.deepEqual(await effects(fixture.db), items, 'each handled once');
      assert.deepEqual(
        calls.filter((call) => call.item === 13).map((call) => call.attempt),
        [1, 2],
        'the failing handler ran once per attempt',
      );
      assert.deepEqual(
        committed.map((entry) => entry.item),
        [11, 12, 14, 15, 16, 13],
        'the others in arrival order, the failed one on its retry',
      );
      const transactions = new Set(committed.map((entry) => entry.transaction));
      assert.ok(transactions.size < committed.length, `some events shared a transaction: ${JSON.stringify(committed)}`);
      assert.deepEqual(await fixture.transport.deadLetters.list(CONSUMER), []);
    });

    it('when the same event is delivered twice, then it has one effect', async () => {
      await subscribe(recordEffect);
      const { event, message } = eventMessage(4);
      await fixture.publish([message, message]);
      await fixture.publish([message]);
      // Each of the three finished: the effect of any of them is committed by then.
      await eventually(() => deliveries.outcomes(event.event_id).length === 3, 5_000, 'three deliveries finished');
      assert.deepEqual(deliveries.outcomes(event.event_id), ['ack', 'ack', 'ack']);
      assert.deepEqual(await effects(fixture.db), [4]);
    });

    it('when a message is not an event, then it is parked at once and the consumer keeps working', async () => {
      await subscribe(recordEffect);
      const notJson = { ...eventMessage(0).message, messageId: 'not-json-1', body: Buffer.from('this is not JSON {') };
      const incomplete = {
        ...eventMessage(0).message,
        messageId: 'no-fields-1',
        body: Buffer.from(JSON.stringify({ event_type: EVENT_TYPE, data: {} })),
      };
      await fixture.publish([notJson, incomplete, eventMessage(5).message]);
      await eventually(async () => (await effects(fixture.db)).length === 1, 5_000, 'the valid event');
      const parked = await eventually(
        async () => {
          const list = await fixture.transport.deadLetters.list(CONSUMER);
          return list.length === 2 ? list : undefined;
        },
        5_000,
        'both invalid messages parked',
      );
      assert.deepEqual(
        parked.map((m) => m.reason),
        ['invalid_message', 'invalid_message'],
      );
      assert.deepEqual(
        parked.map((m) => m.attempts),
        [1, 1],
      );
      assert.match(parked[0].error, /not valid JSON/);
      assert.match(parked[1].error, /event envelope/);
      assert.equal(parked[0].body, 'this is not JSON {');
      assert.equal(await fixture.transport.deadLetters.purge(CONSUMER, { id: parked[0].id }), 1);
      assert.equal((await fixture.transport.deadLetters.list(CONSUMER)).length, 1);
    });

    it("when an event's data does not match its type's contract, then it is parked at once as invalid_data, naming the field, and the consumer keeps working", async () => {
      await subscribe(recordEffect);
      const { event, message } = eventMessage(8);
      const wrong = { ...event, data: { ...event.data, updated_by: 'Иван' } };
      await fixture.publish([{ ...message, body: Buffer.from(JSON.stringify(wrong)) }, eventMessage(9).message]);
      await eventually(async () => (await effects(fixture.db)).includes(9), 5_000, 'the valid event after it');
      const parked = await eventually(
        async () => {
          const list = await fixture.transport.deadLetters.list(CONSUMER);
          return list.length === 1 ? list : undefined;
        },
        5_000,
        'the invalid event parked',
      );
      assert.equal(parked[0].id, event.event_id);
      assert.equal(parked[0].reason, 'invalid_data');
      assert.equal(parked[0].attempts, 1);
      assert.match(parked[0].error, /defect\.updated: data\.updated_by/);
      assert.deepEqual(await effects(fixture.db), [9], 'the invalid event had no effect');
    });

    it('when the consumer is closed while a handler runs, then that message is finished and not delivered again', async () => {
      let started!: () => void;
      const handlerStarted = new Promise<void>((resolve) => (started = resolve));
      let handled = 0;
      await subscribe(async (tx, event, context) => {
        started();
        // Keeps the handler busy across the close() below: a close that did not wait for it
        // would resolve before the effect is committed.
        await new Promise((resolve) => setTimeout(resolve, 300));
        await recordEffect(tx, event, context);
        handled += 1;
      });
      const inHand = eventMessage(6);
      await fixture.publish([inHand.message]);
      await handlerStarted;
      await subscription!.close();
      subscription = undefined;
      assert.deepEqual(await effects(fixture.db), [6], 'the message in hand was finished before close resolved');
      await subscribe(async (tx, event, context) => {
        await recordEffect(tx, event, context);
        handled += 1;
      });
      // A sentinel published now is behind a redelivered message 6 in the queue, and the
      // transport hands messages over in queue order: once the sentinel is handled, a
      // redelivery would have been handed over (and counted) before it.
      const sentinel = eventMessage(7);
      await fixture.publish([sentinel.message]);
      await eventually(() => deliveries.outcomes(sentinel.event.event_id).length === 1, 5_000, 'the sentinel handled');
      assert.equal(deliveries.handedOver(inHand.event.event_id), 1, 'not delivered again');
      assert.equal(handled, 2, 'the message in hand, then the sentinel');
      assert.deepEqual(await effects(fixture.db), [6, 7]);
    });
  });
}

describe('event consumer through a broker outage', () => {
  it('when the RabbitMQ connection is cut while events flow, then the consumer reconnects and every event has exactly one effect', async () => {
    await deleteQueues([CONSUMER, `${CONSUMER}.dlq`, `${CONSUMER}.retry.1`, `${CONSUMER}.retry.2`]);
    const proxy = await startTcpProxy(testBrokerAddress());
    const fixture = await createFixture('amqp', amqpUrlThroughPort(proxy.port));
    const deliveries = observeDeliveries(fixture.transport);
    const subscription = startEventConsumer({
      db: fixture.db,
      transport: deliveries.transport,
      log: captureLogs('fatal').log,
      schema: SCHEMA,
      name: CONSUMER,
      handlers: {
        [EVENT_TYPE]: async (tx, event, context) => {
          await new Promise((resolve) => setTimeout(resolve, 30));
          await recordEffect(tx, event, context);
        },
      },
      retryDelaysMs: RETRY_DELAYS,
      prefetch: 5,
    });
    try {
      await subscription.ready;
      // Published straight to the broker, not through the proxy that is about to be cut.
      const publishItems = (items: number[]) =>
        withBroker(async (connection) => {
          const publisher = connection.createPublisher({ confirm: true });
          for (const item of items) {
            const { message } = eventMessage(item);
            await publisher.send(
              {
                exchange: 'events',
                routingKey: EVENT_TYPE,
                messageId: message.messageId,
                contentType: 'application/json',
                durable: true,
              },
              message.body,
            );
          }
          await publisher.close();
        });
      await publishItems(Array.from({ length: 200 }, (_, index) => index + 1));
      await eventually(async () => (await effects(fixture.db)).length >= 20, 10_000, 'some effects before the cut');
      await proxy.stop();
      assert.ok((await effects(fixture.db)).length < 200, 'the cut came while events were flowing');
      await eventually(() => !fixture.transport.isReady(), 10_000, 'the consumer to notice the cut');
      await proxy.start();
      await eventually(async () => (await effects(fixture.db)).length >= 200, 30_000, 'all effects after reconnection');
      // Whatever the cut sent round again is in the queue before this sentinel, and handed over
      // in queue order: once the sentinel is handled and nothing is in hand, all of it was handled.
      await publishItems([201]);
      await eventually(
        async () => (await effects(fixture.db)).includes(201) && deliveries.inHand() === 0,
        10_000,
        'the sentinel handled, nothing in hand',
      );
      assert.deepEqual(
        await effects(fixture.db),
        Array.from({ length: 201 }, (_, index) => index + 1),
      );
    } finally {
      await subscription.close();
      await fixture.close();
      await proxy.close();
    }
  });
});
