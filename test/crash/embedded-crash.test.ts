import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApiClient, emailOf, type ApiClient } from '../support/api-client.ts';
import {
  assertTotalQueue,
  countKeys,
  effectsOf,
  handlingsAsNew,
  startWriteLoad,
  totalQueue,
  writeMarker,
  cleanUpAfterCrash,
} from '../support/crash-harness.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '../support/smtp-sink.ts';
import { eventually } from '../support/test-system.ts';

/** Every recorded event of a type, through the event log's API (PGlite cannot be opened beside the process). */
async function listEvents(api: ApiClient, token: string, eventType: string) {
  const events: Array<{ event_id: string; data: Record<string, any> }> = [];
  for (let offset = 0; ; offset += 200) {
    const page = await api.get(`/v1/events?event_type=${eventType}&limit=200&offset=${offset}`, token);
    if (page.status !== 200) throw new Error(`GET /v1/events answered ${page.status}`);
    events.push(...page.body.items);
    if (events.length >= page.body.total || page.body.items.length === 0) return events;
  }
}

const MARKER = 'embedded-crash-marker';

describe('crash: embedded mode (PGlite and the in-process transport) killed under load', () => {
  const processes: ServiceProcess[] = [];
  let dataDir: string;
  let sink: SmtpSink;

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-embedded-crash-'));
    // The mailer does not depend on the database mode: a real SMTP server counts every mail
    // sent (a second .eml file for the same Message-ID would overwrite the first).
    sink = await startSmtpSink();
  });
  after(() => cleanUpAfterCrash({ processes, opened: [sink], dataDir }));

  it('when the process is killed while writes commit, then after restart every committed change is in the event log once and mailed once', async () => {
    // debug: the consumers' `event handled` lines say which deliveries were handled as new.
    const env = {
      DATA_DIR: dataDir,
      DEMO_USER: 'testuser:123456',
      ADMIN_USER: 'admin:admin-secret',
      LOG_LEVEL: 'debug',
      SMTP_URL: sink.url,
    };
    const port = await freePort();
    const start = async () => {
      const started = await startProcess('src/main.ts', env, port);
      processes.push(started);
      return started;
    };
    const first = await start();
    const api = createApiClient(first.url);
    const manager = await api.login('testuser', '123456');
    const reporter = await api.createUser('engineer');
    const assignee = await api.createUser('engineer');
    const project = await api.post('/v1/projects', { name: 'Склад' }, manager);
    assert.equal(project.status, 201);
    await api.addMembers(project.body.id, manager, reporter, assignee);
    const createDefect = (title: string) =>
      api.post('/v1/defects', { project_id: project.body.id, title, assignee_id: assignee.id }, reporter.token);

    // The kill comes from inside the load, the moment a write is answered 201: that write's
    // events are committed in the outbox and the relay and consumers, woken by the commit,
    // have work in hand; the other writer is still writing.
    let killAfterNextCommit = false;
    let killed: Promise<void> | undefined;
    let committedBeforeKill = new Set<string>();
    // Each defect is created assigned: defect.created for the event log, defect.assigned for a mail.
    const load = startWriteLoad({
      prefix: 'embedded-crash',
      write: async (title) => {
        const { status } = await createDefect(title);
        if (status === 201 && killAfterNextCommit) {
          killAfterNextCommit = false;
          killed = first.kill();
          committedBeforeKill = new Set([...load.committed, title]);
        }
        return status;
      },
    });
    await load.waitForCommits(15);
    killAfterNextCommit = true;
    await eventually(() => killed !== undefined, 30_000, 'the kill after a commit');
    await killed;

    const second = await start();
    await load.waitForCommits(10);
    const history = await load.stop();
    const admin = await api.login('admin', 'admin-secret');

    // Consumer-side sentinel: one more defect, once the load stopped. Its defect.created and
    // defect.assigned queue behind every delivery the crash left (or a copy of one): once it is
    // in the event log and mailed, nothing more can come.
    // The subject names the defect by number ("… дефект #<id> в проекте …"), not by title.
    const defectIdOf = (mail: ReceivedMail) => Number(/#(\d+)/.exec(mail.subject)?.[1]);
    let markerDefectId = 0;
    const assignedToMarker = () => sink.received.filter((mail) => defectIdOf(mail) === markerDefectId);
    const markerEventId = await writeMarker(
      'defect (event log and mail)',
      async () => {
        const marker = await createDefect(MARKER);
        assert.equal(marker.status, 201);
        markerDefectId = marker.body.id;
      },
      async () =>
        assignedToMarker().length > 0
          ? (await listEvents(api, admin, 'defect.created')).find((event) => event.data.title === MARKER)?.event_id
          : undefined,
    );

    const created = (await listEvents(api, admin, 'defect.created')).filter((event) => event.data.title !== MARKER);
    const recorded = created.map((event) => ({ eventId: event.event_id, key: event.data.title as string }));
    const handlings = await handlingsAsNew(() => processes.map((child) => child.output()), 'event-log.recorder', [
      markerEventId,
    ]);
    assertTotalQueue(
      totalQueue(history, effectsOf(recorded, handlings)),
      history,
      'event-log.recorder after the crash',
    );

    // The kill found work in flight: events committed before it were handled (as new) only by the restarted process.
    const byRestarted = await handlingsAsNew(() => [second.output()], 'event-log.recorder', [markerEventId]);
    const finishedAfterRestart = recorded
      .filter((event) => committedBeforeKill.has(event.key) && byRestarted.has(event.eventId))
      .map((event) => event.key);
    assert.ok(
      finishedAfterRestart.length > 0,
      `the restarted process recorded some of the ${committedBeforeKill.size} defects committed before the kill (none: the process was killed idle)`,
    );

    const titleOf = new Map(created.map((event) => [event.data.defect_id as number, event.data.title as string]));
    const mails = sink.received.filter((mail) => defectIdOf(mail) !== markerDefectId);
    for (const mail of mails) assert.deepEqual(mail.recipients, [emailOf(assignee)]);
    const mailed = countKeys(mails.map((mail) => titleOf.get(defectIdOf(mail)) ?? `unknown: ${mail.subject}`));
    assertTotalQueue(totalQueue(history, mailed), history, 'mails received by the SMTP server after the crash');
    assert.equal(assignedToMarker().length, 1, 'the marker mailed once');
  });
});
