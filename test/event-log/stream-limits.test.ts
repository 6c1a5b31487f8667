import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { openEventStream } from '../support/sse-client.ts';
import { eventually } from '../support/test-system.ts';
import {
  events,
  getAs,
  nonReadingStream,
  publishAndRecord,
  reader,
  startEventLogHost,
  type EventLogHost,
  type Reader,
} from './event-log-host.ts';

// The event stream's limits (docs/security.md, Limits), with small settings.

const streamOf = (service: EventLogHost, who: Reader, headers: Record<string, string> = {}) =>
  openEventStream(`${service.url}/v1/events/stream`, { authorization: `Bearer ${who.token}`, ...headers });

describe('event stream: open streams per user and per process', () => {
  let service: EventLogHost;
  before(async () => {
    service = await startEventLogHost({ EVENT_STREAMS_PER_USER: '2', EVENT_STREAMS_PER_PROCESS: '3' });
  });
  after(async () => {
    await service?.close();
  });

  it('answers 429 with a detail past either limit, and ends a user’s streams at once on closeStreamsOfUser', async () => {
    const [alice, bob, carol] = await Promise.all([reader(21, 'admin'), reader(22), reader(23)]);
    const alices = [await streamOf(service, alice), await streamOf(service, alice)];
    const third = await getAs(service.url, '/v1/events/stream', alice);
    assert.equal(third.status, 429);
    assert.equal(third.body.code, 'EVENT_STREAMS_TOO_MANY');
    assert.match(third.body.detail, /You have 2 event streams open/);

    const ofBob = await streamOf(service, bob);
    const overProcess = await getAs(service.url, '/v1/events/stream', carol);
    assert.equal(overProcess.status, 429);
    assert.match(overProcess.body.detail, /server has as many event streams/);

    assert.equal(service.module.closeStreamsOfUser(alice.id), 2);
    await Promise.all(alices.map((stream) => stream.ended));
    const ofCarol = await streamOf(service, carol);
    assert.equal(service.module.closeStreamsOfUser(alice.id), 0, 'none left');
    ofBob.close();
    ofCarol.close();
  });
});

describe('event stream: a client that hangs up while its request is checked', () => {
  let service: EventLogHost;
  before(async () => {
    service = await startEventLogHost({ EVENT_STREAMS_PER_USER: '2' });
  });
  after(async () => {
    await service?.close();
  });

  it('does not keep its slot: after many such hang-ups the user still opens streams', async () => {
    const dave = await reader(31);
    const { port } = new URL(service.url);
    // Each request is sent whole and the connection reset at once, while the server still
    // checks the token and reads the Last-Event-ID's position.
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const socket = net.connect(Number(port), '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(
        `GET /v1/events/stream HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${dave.token}\r\nlast-event-id: 0\r\n\r\n`,
      );
      socket.resetAndDestroy();
    }
    // The limit is 2: both fresh streams open once the hung-up requests have let go of theirs.
    const streams: Array<Awaited<ReturnType<typeof streamOf>>> = [];
    await eventually(
      async () => {
        while (streams.length < 2) streams.push(await streamOf(service, dave)); // throws on a 429
        return true;
      },
      5_000,
      'two streams opened after the hang-ups (their slots released)',
    );
    assert.equal(service.module.closeStreamsOfUser(dave.id), 2, 'exactly the two streams just opened');
    await Promise.all(streams.map((stream) => stream.ended));
  });
});

describe('event stream: Last-Event-ID, catch-up pages, token expiry, clients that do not read', () => {
  let service: EventLogHost;
  let admin: Reader;
  before(async () => {
    service = await startEventLogHost({ EVENT_STREAM_CATCH_UP_PAGE: '3', EVENT_STREAM_MAX_UNSENT_BYTES: '65536' });
    admin = await reader(1, 'admin');
    await publishAndRecord(service.url, admin, [events.projectCreated(1, 1)]);
  });
  after(async () => {
    await service?.close();
  });

  it('answers 400 for a Last-Event-ID that is negative, not a number or beyond the latest', async () => {
    const latest = await latestSeq();
    for (const bad of ['-1', 'abc', '1.5', String(latest + 1), '99999999999999999999']) {
      const byHeader = await getAs(service.url, '/v1/events/stream', admin, { 'last-event-id': bad });
      assert.equal(byHeader.status, 400, `Last-Event-ID: ${bad}`);
      assert.equal(byHeader.body.code, 'EVENT_STREAM_BAD_LAST_EVENT_ID');
      assert.match(byHeader.body.detail, new RegExp(`from 0 to ${latest}`));
      const byQuery = await getAs(service.url, `/v1/events/stream?last_event_id=${encodeURIComponent(bad)}`, admin);
      assert.equal(byQuery.status, 400, `?last_event_id=${bad}`);
    }
    const atLatest = await streamOf(service, admin, { 'last-event-id': String(latest) });
    atLatest.close();
  });

  /** The latest stream id: the seq of the newest event, as a catch-up from 0 shows it. */
  async function latestSeq(): Promise<number> {
    const stream = await streamOf(service, admin, { 'last-event-id': '0' });
    const { total } = (await getAs(service.url, '/v1/events?limit=1', admin)).body;
    const messages = await stream.waitFor(total, 10_000);
    stream.close();
    return Number(messages.at(-1)!.id);
  }

  it('sends a catch-up of several pages whole and in order, then live events without a gap', async () => {
    const before = await latestSeq();
    const missed = Array.from({ length: 10 }, (_, index) => events.projectUpdated(1, 1, `Пропущено ${index}`));
    await publishAndRecord(service.url, admin, missed);
    const resumed = await streamOf(service, admin, { 'last-event-id': String(before) });
    const live = events.projectUpdated(1, 1, 'После догонки');
    const caughtUp = await resumed.waitFor(missed.length, 10_000);
    await publishAndRecord(service.url, admin, [live]);
    const all = await resumed.waitFor(missed.length + 1, 10_000);
    resumed.close();
    assert.deepEqual(
      caughtUp.map((message) => message.data.event_id),
      missed.map((event) => event.event_id),
    );
    assert.equal(all.at(-1)!.data.event_id, live.event_id);
    const ids = all.map((message) => Number(message.id));
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
  });

  it('ends a stream when its token expires', async () => {
    const shortLived = await reader(31, 'admin', 2);
    const openedAt = Date.now();
    const stream = await streamOf(service, shortLived);
    await stream.ended;
    const lasted = Date.now() - openedAt;
    assert.ok(lasted >= 800 && lasted < 10_000, `ended after ${lasted} ms`);
    assert.equal((await getAs(service.url, '/v1/events', shortLived)).status, 401);
  });

  it('drops a client that does not read once its unsent data passes the bound, and not one that reads', async () => {
    const idle = await nonReadingStream(service.url, admin);
    const reading = await streamOf(service, admin);
    // 12 MB in all, far more than the bound (64 KiB) and the kernel's socket buffers (about 4 MB
    // on loopback), one event
    // at a time: the reading client takes each before the next (a burst larger than the
    // bound drops a reader too, which then resumes with Last-Event-ID; decision 010).
    const big = Array.from({ length: 60 }, (_, index) =>
      events.projectUpdated(1, 1, `${index} ${'Б'.repeat(100_000)}`),
    );
    for (const [index, event] of big.entries()) {
      await publishAndRecord(service.url, admin, [event]);
      const [message] = (await reading.waitFor(index + 1, 10_000)).slice(index);
      assert.equal(message.data.event_id, event.event_id, 'the reading client gets every event');
    }
    reading.close();
    // Ends (a client the server kept would wait here for ever) short of everything.
    const { bytes } = await idle.readToEnd();
    assert.ok(bytes < 8_000_000, `the dropped client got ${bytes} bytes of about 12 MB`);
  });
});
