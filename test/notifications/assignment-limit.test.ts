import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/platform/config.ts';
import { emailOf, type TestUser } from '../support/api-client.ts';
import { scrapeMetrics } from '../support/metrics.ts';
import { createMailSentinel, smtpMailCounter, type MailSentinel } from '../support/sentinel.ts';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

const PROJECT = 'Мост через Неву';
const SUPPRESSED = { event_type: 'defect.assigned' };

describe('notifications: at most ASSIGNMENT_MAILS_PER_HOUR assignment e-mails per person and defect (PostgreSQL, RabbitMQ, SMTP)', () => {
  let sink: SmtpSink;
  let system: TestSystem;
  let sentinel: MailSentinel;
  let manager: TestUser;
  let admin: TestUser;
  let first: TestUser;
  let second: TestUser;
  let projectId: number;
  let limit: number;
  /** The defect the first test brought to the limit for both engineers. */
  let limitedDefect: number | undefined;

  before(async () => {
    sink = await startSmtpSink();
    system = await startTestSystem({ mode: 'postgres', env: { SMTP_URL: sink.url } });
    limit = loadConfig(system.env).ASSIGNMENT_MAILS_PER_HOUR; // the default: the limit as shipped
    sentinel = createMailSentinel(system, smtpMailCounter(sink));
    [manager, admin, first, second] = [
      await system.api.createUser('manager'),
      await system.api.createUser('admin'),
      await system.api.createUser('engineer'),
      await system.api.createUser('engineer'),
    ];
    const project = await system.api.post('/v1/projects', { name: PROJECT }, manager.token);
    assert.equal(project.status, 201);
    projectId = project.body.id;
    await system.api.addMembers(projectId, manager.token, first, second); // assignees must be members
  });
  after(async () => {
    await system?.close();
    await sink?.close();
  });

  const assign = async (defectId: number, to: TestUser) => {
    const response = await system.api.patch(`/v1/defects/${defectId}`, { assignee_id: to.id }, manager.token);
    assert.equal(response.status, 200, JSON.stringify(response.body));
  };
  /** The defect's assignment events as the event log recorded them (all of them, mailed or not). */
  const assignmentEvents = (defectId: number, count: number) =>
    eventually(
      async () => {
        const response = await system.api.get(
          `/v1/events?event_type=defect.assigned&defect_id=${defectId}&limit=100`,
          admin.token,
        );
        const items = response.body.items as Array<{ event_id: string; data: { assignee_id: number } }>;
        return items.length >= count ? items : undefined;
      },
      15_000,
      `${count} defect.assigned events of defect #${defectId} in the event log`,
    );
  const mailsAbout = (user: TestUser, defectId: number) =>
    sink.to(emailOf(user)).filter((mail) => mail.subject.startsWith(`Вам назначен дефект #${defectId} `));

  it('limit+2 assignments of one defect to one person within the hour: limit e-mails; the rest are in the event log, logged and counted; another defect still mails', async () => {
    const suppressedBefore = (await scrapeMetrics(system.url)).value('notification_mails_suppressed_total', SUPPRESSED);
    const title = 'Трещина в опоре <Срочно!>';
    const created = await system.api.post(
      '/v1/defects',
      { project_id: projectId, title, assignee_id: first.id },
      manager.token,
    );
    assert.equal(created.status, 201);
    const defectId = created.body.id as number;
    limitedDefect = defectId;
    // limit+2 assignments to `first` (the creation is one), with `second` in between: limit+1 to `second`.
    for (let round = 1; round < limit + 2; round += 1) {
      await assign(defectId, second);
      await assign(defectId, first);
    }
    const events = await assignmentEvents(defectId, 2 * limit + 3);
    assert.equal(events.filter((event) => event.data.assignee_id === first.id).length, limit + 2);
    assert.equal(events.filter((event) => event.data.assignee_id === second.id).length, limit + 1);

    // Another defect of the same person, after all that: its mail is not held back.
    const other = await system.api.post(
      '/v1/defects',
      { project_id: projectId, title: 'Скол', assignee_id: first.id },
      manager.token,
    );
    assert.equal(other.status, 201);
    const [otherEvent] = await assignmentEvents(other.body.id, 1);

    await sentinel.settle({ handled: [...events.map((event) => event.event_id), otherEvent.event_id] });
    assert.equal(mailsAbout(first, defectId).length, limit, 'limit mails to the first, no more');
    assert.equal(mailsAbout(second, defectId).length, limit, 'limit mails to the second, no more');
    assert.equal(mailsAbout(first, other.body.id).length, 1, "another defect's mail arrives");

    for (const mail of mailsAbout(first, defectId)) {
      assert.equal(mail.subject, `Вам назначен дефект #${defectId} в проекте «${PROJECT}»`);
      assert.ok(!mail.subject.includes('Трещина'), 'the title is not in the subject');
      assert.ok(mail.text!.includes(`«${title}»`), 'the title is in the body');
    }

    const suppressedAfter = (await scrapeMetrics(system.url)).value('notification_mails_suppressed_total', SUPPRESSED);
    assert.equal(suppressedAfter - suppressedBefore, 3, 'two held back for the first, one for the second');
    const held = system.logs.lines.filter(
      (line) => line.defect_id === defectId && String(line.msg).startsWith('e-mail not sent:'),
    );
    assert.deepEqual(
      held.map((line) => line.to as string).sort(),
      [emailOf(first), emailOf(first), emailOf(second)].sort(),
    );
  });

  it('after a restart the count still holds: it is kept in notifications.sent_mail, not in the process', async () => {
    assert.ok(limitedDefect, 'the first test ran');
    const { DATABASE_URL, DATA_DIR } = system.env;
    await system.close({ keepData: true });
    system = await startTestSystem({
      mode: 'postgres',
      env: { SMTP_URL: sink.url },
      reuse: { DATABASE_URL, DATA_DIR },
    });
    sentinel = createMailSentinel(system, smtpMailCounter(sink));
    const before = (await assignmentEvents(limitedDefect, 1)).length;
    await assign(limitedDefect, second);
    await assign(limitedDefect, first);
    const events = await assignmentEvents(limitedDefect, before + 2);
    await sentinel.settle({ handled: events.map((event) => event.event_id) });
    assert.equal(mailsAbout(first, limitedDefect).length, limit);
    assert.equal(mailsAbout(second, limitedDefect).length, limit);
    assert.equal(
      system.logs.lines.filter(
        (line) => line.defect_id === limitedDefect && String(line.msg).startsWith('e-mail not sent:'),
      ).length,
      2,
      'both held back by the restarted process',
    );
  });
});
