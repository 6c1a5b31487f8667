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
  dropDatabase,
  effectsOf,
  endOrphanedSession,
  freshDatabaseUrl,
  handlingsAsNew,
  holdLock,
  recordedEvents,
  startWriteLoad,
  totalQueue,
  waitForBlockedStatement,
  waitUntil,
} from '../support/crash-harness.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';

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
  after(async () => {
    for (const child of processes) if (child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    await admin?.end();
    await queue?.close();
    await dropDatabase(databaseUrl);
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('when the process dies between the confirm and the DELETE under a write load, then the batch goes out again and every committed change is recorded once', async () => {
    // debug: the consumers' `event handled` lines say which deliveries were handled as new.
    const env = { DATABASE_URL: databaseUrl, AMQP_URL: TEST_AMQP_URL, DATA_DIR: dataDir, DEMO_USER: 'testuser:123456', LOG_LEVEL: 'debug' };
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
    await waitUntil('events waiting in the outbox', async () => (await admin!.query('SELECT count(*)::int AS n FROM projects.outbox')).rows[0].n >= 10);
    const rowLocks = await holdLock(databaseUrl, 'SELECT id, event_id::text FROM projects.outbox ORDER BY id FOR UPDATE');
    const heldEventIds: string[] = rowLocks.rows.map((row) => row.event_id);
    await admin.query("SELECT pg_advisory_unlock(hashtext('outbox-relay:projects'))");

    // The relay sends its DELETE only after the broker confirmed the batch and every one before it.
    const blocked = await waitForBlockedStatement(admin, 'DELETE FROM projects.outbox');
    await waitUntil('the held events on the broker', () => heldEventIds.every((id) => queue.messages.some((m) => eventIdOf(m) === id)));
    await waitUntil('the held events in the event log (handled the first time)', async () =>
      (await admin!.query('SELECT count(*)::int AS n FROM event_log.events WHERE event_id = ANY($1::uuid[])', [heldEventIds])).rows[0].n === heldEventIds.length,
    );
    await new Promise((resolve) => setTimeout(resolve, 500)); // the debug lines of that handling reach stdout

    await first.kill();
    await endOrphanedSession(admin, blocked);
    await rowLocks.release();
    const left = await admin.query('SELECT count(*)::int AS n FROM projects.outbox WHERE event_id = ANY($1::uuid[])', [heldEventIds]);
    assert.equal(left.rows[0].n, heldEventIds.length, 'the confirmed batch is still in the outbox: the crash fell in the window');

    await start();
    await waitUntil('the held events published a second time', () =>
      heldEventIds.every((id) => queue.messages.filter((m) => eventIdOf(m) === id).length >= 2), 60_000);
    await load.waitForCommits(10);
    const history = await load.stop();

    await waitUntil('the outbox empty', async () => (await admin!.query('SELECT count(*)::int AS n FROM projects.outbox')).rows[0].n === 0, 60_000);
    await waitUntil('every committed project in the event log', async () => {
      const recorded = new Set((await recordedEvents(admin!, 'project.created', 'name')).map((event) => event.key));
      return [...history.committed].every((name) => recorded.has(name));
    }, 30_000).catch(() => undefined); // the verdict below names what is missing
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // a repeated handling would be logged by now

    const handlings = handlingsAsNew(processes.map((child) => child.output()), 'event-log.recorder');
    const effects = effectsOf(await recordedEvents(admin, 'project.created', 'name'), handlings);
    assertTotalQueue(totalQueue(history, effects), history, 'event-log.recorder after the relay crash');
    for (const id of heldEventIds) assert.equal(handlings.get(id), 1, `event ${id} handled as new once (the second copy was a duplicate)`);
    const published = queue.messages.map(eventIdOf);
    assert.ok(published.length > new Set(published).size, 'the broker saw the batch twice (the duplicate the inbox absorbed)');
  });
});
