import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Connection, type AsyncMessage, type SyncMessage } from 'rabbitmq-client';
import { createEvent, type EventEnvelope } from '../../src/platform/events/envelope.ts';
import { CONSUMER_NAMES } from '../../src/services/consumer-names.ts';
import { DELIVERIES_EXCHANGE } from '../../src/platform/events/transport.ts';
import { bindTestQueue, withBroker, type TestQueue } from '../support/broker.ts';
import { TEST_AMQP_URL } from '../support/environment.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';
import { eventBytes, publishEvents, reportsIn } from '../support/wire-events.ts';

// What a retried or parked event looks like on RabbitMQ, read with a plain AMQP client. The
// consumer under test is notifications.email, made to fail on every attempt the way it does
// in production: a defect.assigned about a defect it has never heard of is retried until the
// defect.created arrives, which here it never does.

const QUEUE = CONSUMER_NAMES.notificationsEmail;
const retryQueue = (step: number) => `${QUEUE}.retry.${step}`;
const DLQ = `${QUEUE}.dlq`;
/** The default EVENTS_RETRY_DELAYS as the README states it: 1s,5s,30s,2m,10m. */
const DEFAULT_SCHEDULE_MS = [1_000, 5_000, 30_000, 120_000, 600_000];
/** The same shape divided by 100, so that a whole natural cycle takes seconds. */
const SHORT_SCHEDULE_MS = DEFAULT_SCHEDULE_MS.map((delay) => delay / 100);
const SHORT_SCHEDULE = SHORT_SCHEDULE_MS.map((delay) => `${delay}ms`).join(',');
const RETRY_QUEUE_ARGUMENTS = { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': QUEUE };

/** ±20 %: an expiration must lie in [0.8 d, 1.2 d] (rounded to whole ms). */
const assertJittered = (expiration: number, delay: number, what: string) => {
  assert.ok(Number.isInteger(expiration), `${what}: ${expiration} is a whole number of ms`);
  assert.ok(
    expiration >= Math.floor(delay * 0.8) && expiration <= Math.ceil(delay * 1.2),
    `${what}: ${expiration} ms within ${delay} ms ±20 %`,
  );
};

/**
 * Jitter is there so that events failing together do not come back together: at each step
 * of a schedule whose delay leaves room for it, the events' expirations must not all be the
 * same, and over the whole schedule not every one can be the nominal delay.
 */
const assertSpread = (expirationsByStep: number[][], schedule: number[]) => {
  for (const [index, expirations] of expirationsByStep.entries()) {
    if (schedule[index] < 300) continue; // 10 ms ±20 % has five values: equal ones are no evidence
    assert.ok(
      new Set(expirations).size > 1,
      `step ${index + 1}: expirations ${expirations.join(',')} differ between events`,
    );
  }
  assert.ok(
    expirationsByStep.some((expirations, index) => expirations.some((value) => value !== schedule[index])),
    'not every expiration is the bare delay',
  );
};

/** A defect.assigned the notifications consumer cannot handle (the defect is unknown to it). */
const unknownDefectAssignment = (defectId: number) =>
  createEvent('defect.assigned', { defect_id: defectId, assignee_id: 900_001, assigned_by: 900_002 }, 900_002);

/** Takes (and acknowledges) every message in a queue. */
async function takeAll(queue: string): Promise<SyncMessage[]> {
  return withBroker(async (connection) => {
    const channel = await connection.acquire();
    try {
      const taken: SyncMessage[] = [];
      for (let message = await channel.basicGet({ queue }); message; message = await channel.basicGet({ queue })) {
        channel.basicAck({ deliveryTag: message.deliveryTag });
        taken.push(message);
      }
      return taken;
    } finally {
      await channel.close();
    }
  });
}

const messageCount = (queue: string) =>
  withBroker(async (connection) => (await connection.queueDeclare({ queue, passive: true })).messageCount);

/** What every copy (retry or parked) keeps of the original: body bytes, properties, persistence, routing key. */
function assertCopyOf(copy: AsyncMessage | SyncMessage, event: EventEnvelope, requestId: string, what: string) {
  assert.ok(
    Buffer.isBuffer(copy.body)
      ? copy.body.equals(eventBytes(event))
      : JSON.stringify(copy.body) === eventBytes(event).toString(),
    `${what}: the body is the original envelope, byte for byte`,
  );
  assert.equal(copy.durable, true, `${what}: persistent (delivery mode 2)`);
  assert.equal(copy.messageId, event.event_id, `${what}: message_id`);
  assert.equal(copy.type, event.event_type, `${what}: type`);
  assert.equal(copy.appId, 'test-relay', `${what}: app_id`);
  assert.equal(copy.contentType, 'application/json', `${what}: content_type`);
  assert.equal(copy.headers?.['x-original-routing-key'], event.event_type, `${what}: x-original-routing-key`);
  assert.equal(copy.headers?.['x-request-id'], requestId, `${what}: the request's id travels on`);
}

/** Publishes the events together, waits until every one is parked, and takes them off the DLQ. */
async function publishAndTakeParked(events: EventEnvelope[], requestId: (event: EventEnvelope) => string) {
  await publishEvents(events.map((event) => ({ event, headers: { 'x-request-id': requestId(event) } })));
  await eventually(
    async () => (await messageCount(DLQ)) === events.length,
    30_000,
    `${events.length} messages parked in ${DLQ}`,
  );
  return takeAll(DLQ);
}
describe(`retries and dead letters on the wire, schedule ${SHORT_SCHEDULE} (the default / 100)`, () => {
  let system: TestSystem;
  /** The delivery reports of the consumer under test, read off `event-deliveries`. */
  let reports: TestQueue;
  const events = [1, 2, 3, 4].map((index) => unknownDefectAssignment(910_000 + index));
  const requestId = (event: EventEnvelope) => `wire-${event.event_id}`;
  let parked: SyncMessage[];
  let startedAt: number;

  before(async () => {
    system = await startTestSystem({ mode: 'postgres', env: { EVENTS_RETRY_DELAYS: SHORT_SCHEDULE } });
    reports = await bindTestQueue([QUEUE], { exchange: DELIVERIES_EXCHANGE });
    startedAt = Date.now();
    // Together, so that they share the retry queues (and their jitter can be told apart).
    parked = await publishAndTakeParked(events, requestId);
  });
  after(async () => {
    await reports?.close();
    await system?.close();
  });

  it('the retry and dead-letter queues are durable, and each retry queue dead-letters back to the consumer queue', async () => {
    await withBroker(async (connection) => {
      // A declaration the broker accepts only if it is equivalent to the existing queue's.
      for (let step = 1; step <= SHORT_SCHEDULE_MS.length; step += 1) {
        await connection.queueDeclare({ queue: retryQueue(step), durable: true, arguments: RETRY_QUEUE_ARGUMENTS });
      }
      await connection.queueDeclare({ queue: DLQ, durable: true });
      await assert.rejects(
        connection.queueDeclare({ queue: retryQueue(1), durable: false, arguments: RETRY_QUEUE_ARGUMENTS }),
        /PRECONDITION_FAILED|inequivalent/,
      );
    });
  });

  it('a parked message is the original, persistent, with x-attempt, x-park-reason, x-park-error, x-parked-at, x-last-error and no expiration', () => {
    assert.equal(parked.length, events.length);
    for (const event of events) {
      const copy = parked.find((message) => message.messageId === event.event_id);
      assert.ok(copy, `${event.event_id} parked`);
      const what = `parked ${event.data.defect_id}`;
      assertCopyOf(copy, event, requestId(event), what);
      const headers = copy.headers ?? {};
      assert.equal(headers['x-attempt'], SHORT_SCHEDULE_MS.length + 1, `${what}: one attempt per delay and the first`);
      assert.equal(headers['x-park-reason'], 'retries_exhausted');
      assert.match(String(headers['x-park-error']), new RegExp(`defect #${event.data.defect_id} is not known yet`));
      assert.match(
        String(headers['x-last-error']),
        new RegExp(`defect #${event.data.defect_id} is not known yet`),
        `${what}: the last retry's error`,
      );
      const parkedAt = Date.parse(String(headers['x-parked-at']));
      assert.match(String(headers['x-parked-at']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(
        parkedAt >= startedAt && parkedAt <= Date.now(),
        `${what}: x-parked-at ${headers['x-parked-at']} is when it was parked`,
      );
      assert.equal(copy.expiration, undefined, `${what}: a parked message does not expire`);
    }
  });

  it("each retry copy expired after its delay ±20 % (the broker's own record, x-death original-expiration), jittered per event", () => {
    const expirationsByStep: number[][] = SHORT_SCHEDULE_MS.map(() => []);
    for (const copy of parked) {
      const deaths = copy.headers?.['x-death'] as Array<Record<string, any>> | undefined;
      assert.ok(Array.isArray(deaths), `x-death on ${copy.messageId}: ${JSON.stringify(copy.headers)}`);
      for (const [index, delay] of SHORT_SCHEDULE_MS.entries()) {
        const death: Record<string, any> | undefined = deaths.find((entry) => entry.queue === retryQueue(index + 1));
        assert.ok(death, `${copy.messageId} went through ${retryQueue(index + 1)}: ${JSON.stringify(deaths)}`);
        assert.equal(death.reason, 'expired');
        assert.equal(death.count, 1, `once through ${retryQueue(index + 1)}`);
        const expiration = Number(death['original-expiration']);
        assertJittered(expiration, delay, `${copy.messageId} step ${index + 1}`);
        expirationsByStep[index].push(expiration);
      }
      assert.equal(deaths.length, SHORT_SCHEDULE_MS.length, 'through no other queue');
    }
    assertSpread(expirationsByStep, SHORT_SCHEDULE_MS);
  });

  it("the times between attempts follow the schedule: at least each copy's expiration, at most the step's delay +20 % and scheduling slack", () => {
    // The delivery reports, read off `event-deliveries`, say when each attempt's outcome was
    // decided. A report's `at` is taken once its retry copy's confirm came back, so the next
    // attempt cannot come before that copy's expiration, less what passed between the broker
    // queueing the copy and `at` being taken: the confirm's way back, and any pause of the
    // service's event loop in between (a GC pause, the other core busy with the broker). That
    // is not the same for two reports, so it does not cancel out of the gap: 300 ms of slack
    // (the check still bites at the steps of 1.2 s and 6 s, where a copy that skipped its
    // delay would come back within tens of ms). A copy may wait behind a longer-lived one at
    // the head of its retry queue, which is at most the step's delay +20 %; 1.5 s covers the
    // broker's expiry, the redelivery and the handler's transaction on a busy two-core machine.
    const CONFIRM_SLACK_MS = 300;
    const SCHEDULING_SLACK_MS = 1_500;
    for (const copy of parked) {
      const deaths = copy.headers!['x-death'] as Array<Record<string, any>>;
      const attempts = reportsIn(reports.messages)
        .filter((report) => report.event_id === copy.messageId)
        .sort((a, b) => a.attempt - b.attempt);
      assert.deepEqual(
        attempts.map((report) => `${report.attempt}:${report.status}`),
        ['1:retrying', '2:retrying', '3:retrying', '4:retrying', '5:retrying', '6:parked'],
      );
      for (const [index, delay] of SHORT_SCHEDULE_MS.entries()) {
        const expiration = Number(
          deaths.find((entry) => entry.queue === retryQueue(index + 1))!['original-expiration'],
        );
        const gap = Date.parse(attempts[index + 1].at) - Date.parse(attempts[index].at);
        assert.equal(
          Date.parse(attempts[index].next_attempt_at!) - Date.parse(attempts[index].at),
          expiration,
          `the report's next attempt is the copy's expiration (step ${index + 1})`,
        );
        assert.ok(
          gap >= expiration - CONFIRM_SLACK_MS,
          `step ${index + 1}: ${gap} ms between attempts, expiration ${expiration} ms`,
        );
        assert.ok(
          gap <= delay * 1.2 + SCHEDULING_SLACK_MS,
          `step ${index + 1}: ${gap} ms between attempts, delay ${delay} ms`,
        );
      }
    }
  });
});

describe('retries on the wire with the default schedule (1s,5s,30s,2m,10m): each retry copy read before it expires', () => {
  let system: TestSystem;
  let taps: Connection;
  const closers: Array<() => Promise<void>> = [];
  const copiesByStep = new Map<number, AsyncMessage[]>();
  const events = [1, 2, 3].map((index) => unknownDefectAssignment(920_000 + index));
  const requestId = (event: EventEnvelope) => `default-${event.event_id}`;
  let parked: SyncMessage[];

  before(async () => {
    // No EVENTS_RETRY_DELAYS: the default applies.
    system = await startTestSystem({ mode: 'postgres' });
    assert.equal(system.env.EVENTS_RETRY_DELAYS, undefined);
    taps = new Connection({ url: TEST_AMQP_URL, connectionName: 'test-retry-taps' });
    const back = taps.createPublisher({ confirm: true });
    closers.push(() => back.close());
    // A consumer on each retry queue takes a copy as soon as it is there (minutes before it
    // would expire) and sends it on to the consumer's queue as the broker does when it
    // expires: same properties and headers, without the expiration. The whole schedule runs
    // in moments, and every copy's properties are read as they were published.
    for (let step = 1; step <= DEFAULT_SCHEDULE_MS.length; step += 1) {
      copiesByStep.set(step, []);
      const tap = taps.createConsumer(
        { queue: retryQueue(step), queueOptions: { durable: true, arguments: RETRY_QUEUE_ARGUMENTS } },
        async (copy) => {
          copiesByStep.get(step)!.push(copy);
          const { expiration: _expiration, ...properties } = copy;
          await back.send(
            {
              exchange: '',
              routingKey: QUEUE,
              durable: true,
              messageId: properties.messageId,
              type: properties.type,
              appId: properties.appId,
              contentType: properties.contentType,
              timestamp: properties.timestamp,
              headers: properties.headers,
            },
            copy.body,
          );
        },
      );
      closers.unshift(() => tap.close());
      await new Promise<void>((resolve, reject) => {
        tap.once('ready', resolve);
        tap.once('error', reject);
      });
    }
    parked = await publishAndTakeParked(events, requestId);
  });
  after(async () => {
    for (const close of closers) await close();
    await taps?.close();
    await system?.close();
  });

  it("each step's copy carries expiration = the default delay ±20 %, jittered per event, x-attempt = the next attempt and the last error", () => {
    const expirationsByStep: number[][] = [];
    for (const [index, delay] of DEFAULT_SCHEDULE_MS.entries()) {
      const step = index + 1;
      const copies = copiesByStep.get(step)!;
      assert.deepEqual(
        copies.map((copy) => copy.messageId).sort(),
        events.map((event) => event.event_id).sort(),
        `one copy of each event in ${retryQueue(step)}`,
      );
      for (const copy of copies) {
        const event = events.find((candidate) => candidate.event_id === copy.messageId)!;
        const what = `${retryQueue(step)} copy of ${event.data.defect_id}`;
        assertCopyOf(copy, event, requestId(event), what);
        assert.match(String(copy.expiration), /^\d+$/, `${what}: the per-message expiration, in ms`);
        assertJittered(Number(copy.expiration), delay, what);
        assert.equal(copy.headers?.['x-attempt'], step + 1, `${what}: the attempt it will be`);
        assert.match(
          String(copy.headers?.['x-last-error']),
          new RegExp(`defect #${event.data.defect_id} is not known yet`),
          `${what}: x-last-error`,
        );
        assert.equal(copy.headers?.['x-park-reason'], undefined, `${what}: not parked`);
      }
      expirationsByStep.push(copies.map((copy) => Number(copy.expiration)));
    }
    assertSpread(expirationsByStep, DEFAULT_SCHEDULE_MS);
  });

  it("after the last delay's attempt the event is parked with x-attempt 6 and reason retries_exhausted", () => {
    assert.deepEqual(parked.map((copy) => copy.messageId).sort(), events.map((event) => event.event_id).sort());
    for (const copy of parked) {
      const event = events.find((candidate) => candidate.event_id === copy.messageId)!;
      assertCopyOf(copy, event, requestId(event), `parked ${event.data.defect_id}`);
      assert.equal(copy.headers?.['x-attempt'], DEFAULT_SCHEDULE_MS.length + 1);
      assert.equal(copy.headers?.['x-park-reason'], 'retries_exhausted');
    }
  });
});
