import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { createApiClient } from '../support/api-client.ts';
import { bindTestQueue, deleteQueues, type TestQueue } from '../support/broker.ts';
import {
  assertTotalQueue,
  connectClient,
  effectsOf,
  endOrphanedSession,
  freshDatabaseUrl,
  handlingsAsNew,
  holdLock,
  recordedEvents,
  startWriteLoad,
  totalQueue,
  waitForBlockedStatement,
  writeMarker,
  cleanUpAfterCrash,
} from '../support/crash-harness.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { eventually } from '../support/test-system.ts';

const eventIdOf = (message: { body: unknown }) => (message.body as { event_id: string }).event_id;

describe('crash: the relay killed after the broker confirmed a batch, before its rows left the outbox', () => {
  const databaseUrl = freshDatabaseUrl('relay_crash');
  const processes: ServiceProcess[] = [];
  let dataDir: string;
  let queue: TestQueue;
  let admin: pg.Client | undefined;

  before(async () => {
    await deleteQueues(SERVICE_QUEUES);
    queue = await bindTestQueue(['project.created']);
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-relay-crash-'));
  });
  after(() => cleanUpAfterCrash({ processes, opened: [admin, queue], databaseUrl, dataDir }));

  it('when the process dies between the confirm and the DELETE under a write load, then the batch goes out again and every committed change is recorded once', async () => {
    // debug: the consumers' `event handled` lines say which deliveries were handled as new.
    const env = {
      DATABASE_URL: databaseUrl,
      AMQP_URL: TEST_AMQP_URL,
      DATA_DIR: dataDir,
      DEMO_USER: 'testuser:123456',
      LOG_LEVEL: 'debug',
    };
    const port = await freePort();
    const start = async () => {
      const started = await startProcess('src/main.ts', env, port);
      processes.push(started);
      return started;
    };
    const first = await start();
    admin = await connectClient(databaseUrl);
    const api = createApiClient(first.url);
    const token = await api.login('testuser', '123456');
    const load = startWriteLoad({
      prefix: 'relay-crash',
      write: async (name) => (await api.post('/v1/projects', { name }, token)).status,
    });
    await load.waitForCommits(10);

    // Hold the relay back (its advisory lock) so that committed events wait in the outbox,
    // lock those rows (the relay's SELECT still reads them, its DELETE waits), let it go.
    await admin.query("SELECT pg_advisory_lock(hashtext('outbox-relay:projects'))");
    await eventually(
      async () => (await admin!.query('SELECT count(*)::int AS n FROM projects.outbox')).rows[0].n >= 10,
      30_000,
      'events waiting in the outbox',
    );
    const rowLocks = await holdLock(
      databaseUrl,
      'SELECT id, event_id::text FROM projects.outbox ORDER BY id FOR UPDATE',
    );
    const heldEventIds: string[] = rowLocks.rows.map((row) => row.event_id);
    await admin.query("SELECT pg_advisory_unlock(hashtext('outbox-relay:projects'))");

    // The relay sends its DELETE only after the broker confirmed the batch and every one before it.
    const blocked = await waitForBlockedStatement(admin, 'DELETE FROM projects.outbox');
    await eventually(
      () => heldEventIds.every((id) => queue.messages.some((m) => eventIdOf(m) === id)),
      30_000,
      'the held events on the broker',
    );
    await eventually(
      async () =>
        (
          await admin!.query('SELECT count(*)::int AS n FROM event_log.events WHERE event_id = ANY($1::uuid[])', [
            heldEventIds,
          ])
        ).rows[0].n === heldEventIds.length,
      30_000,
      'the held events in the event log (handled the first time)',
    );
    // The debug lines of that handling reach stdout (handlingsAsNew waits for each).
    await handlingsAsNew(() => [first.output()], 'event-log.recorder', heldEventIds);

    await first.kill();
    await endOrphanedSession(admin, blocked);
    await rowLocks.release();
    const left = await admin.query('SELECT count(*)::int AS n FROM projects.outbox WHERE event_id = ANY($1::uuid[])', [
      heldEventIds,
    ]);
    assert.equal(
      left.rows[0].n,
      heldEventIds.length,
      'the confirmed batch is still in the outbox: the crash fell in the window',
    );

    await start();
    await eventually(
      () => heldEventIds.every((id) => queue.messages.filter((m) => eventIdOf(m) === id).length >= 2),
      60_000,
      'the held events published a second time',
    );
    await load.waitForCommits(10);
    const history = await load.stop();

    // Consumer-side sentinel: one more project once the load stopped; a delivery requeued or
    // published again sits ahead of it in the recorder's queue.
    const marker = 'relay-crash-marker';
    const markerEventId = await writeMarker(
      'project (event log)',
      async () => assert.equal((await api.post('/v1/projects', { name: marker }, token)).status, 201),
      async () =>
        (await recordedEvents(admin!, 'project.created', 'name')).find((event) => event.key === marker)?.eventId,
    );
    // Broker-side sentinel: the outboxes empty, then a marker through the test's queue.
    await queue.settle(admin);

    const handlings = await handlingsAsNew(() => processes.map((child) => child.output()), 'event-log.recorder', [
      markerEventId,
    ]);
    const effects = effectsOf(
      (await recordedEvents(admin, 'project.created', 'name')).filter((event) => event.key !== marker),
      handlings,
    );
    assertTotalQueue(totalQueue(history, effects), history, 'event-log.recorder after the relay crash');
    for (const id of heldEventIds)
      assert.equal(handlings.get(id), 1, `event ${id} handled as new once (the second copy was a duplicate)`);
    const published = queue.messages.map(eventIdOf);
    assert.ok(
      published.length > new Set(published).size,
      'the broker saw the batch twice (the duplicate the inbox absorbed)',
    );
  });
});
