import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApiClient, type ApiClient } from '../support/api-client.ts';
import { assertTotalQueue, countKeys, effectsOf, handlingsAsNew, startWriteLoad, totalQueue, waitUntil } from '../support/crash-harness.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { parseMail } from '../support/smtp-sink.ts';

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

describe('crash: embedded mode (PGlite and the in-process transport) killed under load', () => {
  const processes: ServiceProcess[] = [];
  let dataDir: string;

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-embedded-crash-'));
  });
  after(async () => {
    for (const child of processes) if (child.child.exitCode === null && child.child.signalCode === null) await child.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('when the process is killed while writes commit, then after restart every committed change is in the event log once and its e-mail is written', async () => {
    // debug: the consumers' `event handled` lines say which deliveries were handled as new.
    const env = { DATA_DIR: dataDir, DEMO_USER: 'testuser:123456', ADMIN_USER: 'admin:admin-secret', LOG_LEVEL: 'debug' };
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
    // Each defect is created assigned: defect.created for the event log, defect.assigned for a mail.
    const load = startWriteLoad({
      prefix: 'embedded-crash',
      write: async (title) =>
        (await api.post('/v1/defects', { project_id: project.body.id, title, assignee_id: assignee.id }, reporter.token)).status,
    });
    await load.waitForCommits(15);
    await first.kill();

    await start();
    await load.waitForCommits(10);
    const history = await load.stop();
    const admin = await api.login('admin', 'admin-secret');

    const mailDir = path.join(dataDir, 'mail');
    const mailedDefects = async () => {
      const files = (await fs.readdir(mailDir)).filter((file) => file.endsWith('.eml'));
      const subjects = await Promise.all(files.map(async (file) => parseMail(await fs.readFile(path.join(mailDir, file), 'utf8')).subject));
      return subjects.map((subject) => Number(/#(\d+)/.exec(subject)?.[1])); // "Вам назначен дефект #<id>: <title>"
    };
    await waitUntil('every committed defect in the event log and mailed', async () => {
      const created = await listEvents(api, admin, 'defect.created');
      const mailed = new Set(await mailedDefects());
      const settled = created.filter((event) => mailed.has(event.data.defect_id)).map((event) => event.data.title);
      return [...history.committed].every((title) => settled.includes(title));
    }, 60_000).catch(() => undefined); // the verdicts below name what is missing
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // a repeated handling would be logged by now

    const created = await listEvents(api, admin, 'defect.created');
    const recorded = created.map((event) => ({ eventId: event.event_id, key: event.data.title as string }));
    const handlings = handlingsAsNew(processes.map((child) => child.output()), 'event-log.recorder');
    assertTotalQueue(totalQueue(history, effectsOf(recorded, handlings)), history, 'event-log.recorder after the crash');

    const titleOf = new Map(created.map((event) => [event.data.defect_id as number, event.data.title as string]));
    const mails = countKeys((await mailedDefects()).map((id) => titleOf.get(id) ?? `unknown defect ${id}`));
    assertTotalQueue(totalQueue(history, mails), history, '.eml files after the crash');
  });
});
