import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { openEventStream } from '../support/sse-client.ts';
import {
  events,
  nonReadingStream,
  publishAndRecord,
  reader,
  startEventLogProcess,
  type Reader,
} from './event-log-host.ts';

// 300 streams that never read, on the event-log service run as its own process: its RSS
// stays under a stated bound while 8 MB of events go out, and every one of those streams is
// dropped once its unsent data passes EVENT_STREAM_MAX_UNSENT_BYTES.
//
// Calibration (2 shared cores): RSS grew by about 90 MiB from 135 MiB with the bound, and by
// about as much with it set to 1 GiB (STREAM_MEMORY_TEST_BOUND=1073741824): a frame is one
// string shared by every client it is written to, so at this volume what a stuck client
// holds is small and the RSS check alone would not tell. The drop check does: with the bound
// out of the way it fails ("not dropped: … still open"). What a stuck client would hold grows
// with everything published after it stopped reading; the bound is what stops that.

const STREAMS = 300;
const UNSENT_BOUND = Number(process.env.STREAM_MEMORY_TEST_BOUND ?? 65_536);
const EVENTS = 40;
const EVENT_BYTES = 200_000; // 100,000 two-byte letters
/** The stated bound on the RSS growth, against 300 × 8 MB written to the streams. */
const RSS_GROWTH_BOUND = 200 * 1024 * 1024;

async function rssOf(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

describe('event stream memory', () => {
  let service: Awaited<ReturnType<typeof startEventLogProcess>>;
  let admin: Reader;
  before(async () => {
    service = await startEventLogProcess({ EVENT_STREAM_MAX_UNSENT_BYTES: String(UNSENT_BOUND) });
    admin = await reader(1, 'admin');
  });
  after(async () => {
    await service?.close();
  });

  it(`${STREAMS} streams that never read do not grow the RSS by more than ${RSS_GROWTH_BOUND / 2 ** 20} MiB`, async () => {
    // Five streams per reader: the default per-user limit.
    const readers = await Promise.all(Array.from({ length: STREAMS / 5 }, (_, index) => reader(100 + index, 'admin')));
    const idle = [];
    for (const who of readers) for (let n = 0; n < 5; n += 1) idle.push(await nonReadingStream(service.url, who));
    const sentinel = await openEventStream(`${service.url}/v1/events/stream`, {
      authorization: `Bearer ${admin.token}`,
    });
    // Warm up the paths an event takes, then measure from there.
    await publishAndRecord(service.url, admin, [events.projectUpdated(1, 1, 'разогрев')]);
    await sentinel.waitFor(1, 10_000);
    const rssBefore = await rssOf(service.child.pid!);
    let peak = rssBefore;
    for (let index = 0; index < EVENTS; index += 1) {
      const event = events.projectUpdated(1, 1, `${index} ${'Б'.repeat(EVENT_BYTES / 2)}`);
      await publishAndRecord(service.url, admin, [event]);
      const [message] = (await sentinel.waitFor(index + 2, 30_000)).slice(index + 1);
      assert.equal(message.data.event_id, event.event_id);
      peak = Math.max(peak, await rssOf(service.child.pid!));
    }
    sentinel.close();
    const growth = peak - rssBefore;
    process.stdout.write(`# RSS ${Math.round(rssBefore / 2 ** 20)} MiB, peak ${Math.round(peak / 2 ** 20)} MiB\n`);
    assert.ok(
      growth < RSS_GROWTH_BOUND,
      `RSS grew by ${Math.round(growth / 2 ** 20)} MiB (from ${Math.round(rssBefore / 2 ** 20)} MiB)`,
    );
    // And they were dropped, not merely slow: every one ends short of what was sent.
    const ends = await Promise.all(idle.map((stream) => stream.readToEnd()));
    for (const { bytes } of ends)
      assert.ok(bytes < EVENTS * EVENT_BYTES * 0.75, `${bytes} of ${EVENTS * EVENT_BYTES} bytes read`);
  });
});
