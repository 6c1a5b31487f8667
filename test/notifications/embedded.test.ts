import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { emailOf } from '../support/api-client.ts';
import { createMailSentinel, emlMailCounter, smtpMailCounter, type MailSentinel } from '../support/sentinel.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';
import { parseMail, startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';

const QUEUE = 'notifications.email';
const DEMO_EMAIL = 'testuser@example.com';

/** The demo user reports defect #1 in a new project, assigned to a fresh engineer. */
async function reportDefect(system: TestSystem, title: string) {
  const demoToken = await system.api.login('testuser', '123456');
  const engineer = await system.api.createUser('engineer');
  const project = await system.api.post('/v1/projects', { name: 'Школа №5' }, demoToken);
  assert.equal(project.status, 201);
  await system.api.addMembers(project.body.id, demoToken, engineer);
  const defect = await system.api.post(
    '/v1/defects',
    { project_id: project.body.id, title, assignee_id: engineer.id },
    demoToken,
  );
  assert.equal(defect.status, 201);
  return { engineer, defectId: defect.body.id as number };
}

/** The id of the status change event, once the event log has it (the outbox lets it go once published). */
async function statusChangeEventId(system: TestSystem, defectId: number): Promise<string> {
  return eventually(
    async () => {
      const { rows } = await system.host.db.query<{ event_id: string }>(
        `SELECT event_id FROM event_log.events WHERE event_type = 'defect.status_changed' AND defect_id = $1 ORDER BY seq`,
        [defectId],
      );
      assert.ok(rows.length <= 1, `one status change, not ${rows.length}`);
      return rows[0]?.event_id;
    },
    10_000,
    'the status change in the event log',
  );
}

describe('notifications in embedded mode, without SMTP: .eml files', () => {
  let system: TestSystem;

  before(async () => {
    system = await startTestSystem({ mode: 'embedded' });
  });
  after(async () => {
    await system?.close();
  });

  it('when the assignee changes the status of defect #1, then an .eml file addressed to its reporter is written under DATA_DIR/mail and the seed line is logged', async () => {
    const { engineer, defectId } = await reportDefect(system, 'Трещина в стене');
    assert.equal(defectId, 1);
    assert.equal((await system.api.patch('/v1/defects/1', { status: 'В работе' }, engineer.token)).status, 200);

    const mailDir = path.join(system.env.DATA_DIR, 'mail');
    const readMails = async () => {
      const names = (await fs.readdir(mailDir).catch(() => [] as string[])).filter((name) => name.endsWith('.eml'));
      return Promise.all(names.map(async (name) => parseMail(await fs.readFile(path.join(mailDir, name), 'utf8'))));
    };
    const readStatusMails = async () =>
      (await readMails()).filter((mail) => mail.subject === "Дефект #1 изменил статус на 'В работе'");
    await eventually(async () => (await readStatusMails()).length > 0, 10_000, 'the .eml of the status change');
    // A second status mail (to the assignee, who made the change) would be written while the
    // event is handled: before it is in the inbox, and before the sentinel's marker mail.
    // (The sentinel's defect is #2: it is made on this first settle, after defect #1.)
    const eventId = await statusChangeEventId(system, defectId);
    await createMailSentinel(system, emlMailCounter(system.env.DATA_DIR)).settle({ handled: [eventId] });
    const statusMails = await readStatusMails();
    assert.equal(statusMails.length, 1, 'only the reporter: the assignee made the change');
    assert.match(statusMails[0].to, /<testuser@example\.com>/);
    assert.ok(statusMails[0].text!.includes('«Трещина в стене»'));
    assert.ok(statusMails[0].text!.includes('«Школа №5»'));
    assert.ok(statusMails[0].html!.includes('Трещина в стене'));
    assert.match(statusMails[0].raw, /^From: Defect Control <noreply@defect-control\.local>/m);

    const assignment = (await readMails()).filter(
      (mail) => mail.subject === 'Вам назначен дефект #1 в проекте «Школа №5»',
    );
    assert.equal(assignment.length, 1);
    assert.match(assignment[0].to, new RegExp(`<${emailOf(engineer)}>`));

    assert.ok(
      system.logs.messages().includes("Отправка email: Дефект #1 изменил статус на 'В работе'"),
      "the seed consumer's line, through the logger",
    );
    const line = system.logs.lines.find(
      (entry) => entry.msg === "Отправка email: Дефект #1 изменил статус на 'В работе'",
    );
    assert.equal(line!.level, 30, 'at info');
    assert.equal(line!.to, DEMO_EMAIL);
  });
});

describe('notifications in embedded mode, with SMTP: exactly once through retries', () => {
  let sink: SmtpSink;
  let system: TestSystem;
  let sentinel: MailSentinel;

  before(async () => {
    sink = await startSmtpSink();
    system = await startTestSystem({
      mode: 'embedded',
      env: { SMTP_URL: sink.url, EVENTS_RETRY_DELAYS: '200ms,400ms' },
    });
    sentinel = createMailSentinel(system, smtpMailCounter(sink));
  });
  after(async () => {
    await system?.close();
    await sink?.close();
  });

  const recipientsOf = (eventId: string) =>
    sink
      .forEvent(eventId)
      .flatMap((mail) => mail.recipients)
      .sort();
  const settle = (eventId: string) => sentinel.settle({ handled: [eventId] });

  it("when the SMTP server refuses the reporter on the first attempts but takes the assignee's mail, then each gets exactly one e-mail", async () => {
    const { engineer, defectId } = await reportDefect(system, 'Протечка');
    await eventually(() => sink.to(emailOf(engineer)).length === 1, 10_000, 'the assignment mail');
    sink.refuse(DEMO_EMAIL, 2);
    const admin = await system.api.login('admin', 'admin-secret');
    assert.equal((await system.api.patch(`/v1/defects/${defectId}`, { status: 'В работе' }, admin)).status, 200);
    const eventId = await statusChangeEventId(system, defectId);

    await eventually(() => recipientsOf(eventId).length === 2, 15_000, 'both mails');
    // Retried: only its inbox entry says that no attempt of it is still to come.
    await settle(eventId);
    assert.deepEqual(recipientsOf(eventId), [DEMO_EMAIL, emailOf(engineer)].sort());
    assert.equal(sink.refusals.get(DEMO_EMAIL), 2);
    const retries = system.logs.lines.filter(
      (line) => line.event_id === eventId && line.msg === 'event handler failed; will retry',
    );
    assert.equal(retries.length, 2);
    // Once the event is handled, the database holds the record and the journal is gone.
    const { rows } = await system.host.db.query(
      'SELECT recipient FROM notifications.sent_mail WHERE event_id = $1 ORDER BY recipient',
      [eventId],
    );
    assert.deepEqual(
      rows.map((row) => row.recipient),
      [DEMO_EMAIL, emailOf(engineer)].sort(),
    );
    await eventually(
      async () =>
        !(await fs
          .stat(path.join(system.env.DATA_DIR, 'notifications', 'sent-journal', `${eventId}.log`))
          .catch(() => undefined)),
      5_000,
      'the journal removed',
    );
  });

  it('when the SMTP server refuses past the schedule, then the event is parked; replayed, it mails only the one not mailed yet', async () => {
    const { engineer, defectId } = await reportDefect(system, 'Обрушение козырька');
    await eventually(() => sink.to(emailOf(engineer)).length === 1, 10_000, 'the assignment mail');
    sink.refuse(DEMO_EMAIL, Infinity);
    const admin = await system.api.login('admin', 'admin-secret');
    assert.equal((await system.api.patch(`/v1/defects/${defectId}`, { status: 'В работе' }, admin)).status, 200);
    const eventId = await statusChangeEventId(system, defectId);

    const parked = await eventually(
      async () => (await system.host.transport.deadLetters.list(QUEUE)).find((message) => message.id === eventId),
      15_000,
      'the parked event',
    );
    assert.equal(parked.reason, 'retries_exhausted');
    assert.equal(parked.attempts, 3);
    assert.match(parked.error, /451/);
    assert.deepEqual(recipientsOf(eventId), [emailOf(engineer)]);

    sink.accept(DEMO_EMAIL);
    assert.equal(await system.host.transport.deadLetters.replay(QUEUE, { id: eventId }), 1);
    await eventually(() => recipientsOf(eventId).length === 2, 10_000, 'the replayed mail');
    await settle(eventId);
    assert.deepEqual(recipientsOf(eventId), [DEMO_EMAIL, emailOf(engineer)].sort());
  });
});
