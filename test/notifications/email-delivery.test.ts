import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AsyncMessage } from 'rabbitmq-client';
import { emailOf, type TestUser } from '../support/api-client.ts';
import { bindTestQueue, withBroker, type TestQueue } from '../support/broker.ts';
import { createEvent } from '../../src/platform/events/envelope.ts';
import { scrapeMetrics } from '../support/metrics.ts';
import { createMailSentinel, smtpMailCounter, type MailSentinel } from '../support/sentinel.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '../support/smtp-sink.ts';

describe('notifications: e-mail on status changes and assignments (PostgreSQL, RabbitMQ, SMTP)', () => {
  let sink: SmtpSink;
  let system: TestSystem;
  let events: TestQueue;
  let sentinel: MailSentinel;
  let owner: TestUser;
  let reporter: TestUser;
  let assignee: TestUser;
  let projectId: number;
  const PROJECT = 'Мост <через> реку & «Ко»';

  before(async () => {
    sink = await startSmtpSink();
    system = await startTestSystem({
      mode: 'postgres',
      env: { SMTP_URL: sink.url, EVENTS_RETRY_DELAYS: '200ms,400ms' },
    });
    events = await bindTestQueue(['defect.status_changed', 'defect.assigned']);
    sentinel = createMailSentinel(system, smtpMailCounter(sink));
    [owner, reporter, assignee] = [
      await system.api.createUser('manager'),
      await system.api.createUser('engineer'),
      await system.api.createUser('engineer'),
    ];
    const project = await system.api.post('/v1/projects', { name: PROJECT }, owner.token);
    assert.equal(project.status, 201);
    projectId = project.body.id;
    await system.api.addMembers(projectId, owner.token, reporter, assignee);
  });
  after(async () => {
    await events?.close();
    await system?.close();
    await sink?.close();
  });

  const createDefect = async (by: TestUser, body: Record<string, unknown>) => {
    const response = await system.api.post('/v1/defects', { project_id: projectId, ...body }, by.token);
    assert.equal(response.status, 201, JSON.stringify(response.body));
    return response.body as { id: number; title: string };
  };
  const eventFor = (type: string, defectId: number, index = 0) =>
    eventually(
      () =>
        events.messages.filter((message) => message.routingKey === type && message.body.data.defect_id === defectId)[
          index
        ],
      10_000,
      `${type} of defect ${defectId}`,
    );
  const idOf = (message: AsyncMessage) => (message.body as { event_id: string }).event_id;
  const mailFor = (eventId: string, count: number) =>
    eventually(
      () => (sink.forEvent(eventId).length >= count ? sink.forEvent(eventId) : undefined),
      15_000,
      `${count} mail(s) for ${eventId}`,
    );
  const recipientsOf = (mails: ReceivedMail[]) => mails.flatMap((mail) => mail.recipients).sort();
  const handled = (eventId: string) =>
    eventually(
      async () =>
        (await system.host.db.query('SELECT 1 FROM notifications.inbox WHERE event_id = $1', [eventId])).rowCount > 0,
      10_000,
      `event ${eventId} handled`,
    );

  it("when the project owner changes a defect's status, then its reporter and assignee get one e-mail each, in text and HTML, and the owner none", async () => {
    const defect = await createDefect(reporter, { title: 'Трещина <b>в опоре</b>', assignee_id: assignee.id });
    const changed = await system.api.patch(`/v1/defects/${defect.id}`, { status: 'В работе' }, owner.token);
    assert.equal(changed.status, 200);

    const eventId = idOf(await eventFor('defect.status_changed', defect.id));
    await mailFor(eventId, 2);
    // A second copy would go out while the event is handled: before the sentinel's marker.
    await sentinel.settle({ handled: [eventId] });
    const mails = sink.forEvent(eventId);
    assert.deepEqual(
      recipientsOf(mails),
      [emailOf(reporter), emailOf(assignee)].sort(),
      'one each, the owner not at all',
    );

    for (const mail of mails) {
      assert.equal(mail.subject, `Дефект #${defect.id} изменил статус на 'В работе'`);
      assert.match(mail.to, new RegExp(mail.recipients[0].replace(/[.]/g, '\\.')));
      assert.ok(mail.text, 'a text/plain part');
      assert.ok(mail.html, 'a text/html part');
      for (const expected of [`«${PROJECT}»`, 'Трещина <b>в опоре</b>', 'Новая', 'В работе', 'Test manager']) {
        assert.ok(mail.text.includes(expected), `text has ${expected}:\n${mail.text}`);
      }
      assert.ok(mail.html.includes('Трещина &lt;b&gt;в опоре&lt;/b&gt;'), 'the title escaped in HTML');
      assert.ok(mail.html.includes('Мост &lt;через&gt; реку &amp; «Ко»'), 'the project name escaped in HTML');
      assert.ok(!mail.html.includes('<b>в опоре'), 'no markup from the data');
    }
    const reporterMail = mails.find((mail) => mail.recipients.includes(emailOf(reporter)))!;
    assert.match(reporterMail.text!, /вы автор этого дефекта/);
    const assigneeMail = mails.find((mail) => mail.recipients.includes(emailOf(assignee)))!;
    assert.match(assigneeMail.text!, /вы исполнитель этого дефекта/);
    assert.equal(sink.to(emailOf(owner)).length, 0);
    assert.equal(
      system.logs
        .messages()
        .filter((line) => line === `Отправка email: Дефект #${defect.id} изменил статус на 'В работе'`).length,
      2,
      'the seed line, once per e-mail sent',
    );

    // Now the assignee moves it on: only the reporter hears of it.
    assert.equal(
      (await system.api.patch(`/v1/defects/${defect.id}`, { status: 'Решена' }, assignee.token)).status,
      200,
    );
    const second = idOf(await eventFor('defect.status_changed', defect.id, 1));
    await mailFor(second, 1);
    await sentinel.settle({ handled: [second] });
    assert.deepEqual(recipientsOf(sink.forEvent(second)), [emailOf(reporter)]);
    assert.equal(sink.forEvent(second)[0].subject, `Дефект #${defect.id} изменил статус на 'Решена'`);
    assert.match(sink.forEvent(second)[0].text!, /Изменил: Test engineer/);
  });

  it('when a defect is created with an assignee, then the assignee gets one e-mail; a reassignment mails the new one; assigning oneself mails nobody', async () => {
    const defect = await createDefect(reporter, {
      title: 'Скол бетона',
      priority: 'Высокий',
      assignee_id: assignee.id,
    });
    const eventId = idOf(await eventFor('defect.assigned', defect.id));
    await mailFor(eventId, 1);
    await sentinel.settle({ handled: [eventId] });
    const mails = sink.forEvent(eventId);
    assert.deepEqual(recipientsOf(mails), [emailOf(assignee)]);
    assert.equal(mails[0].subject, `Вам назначен дефект #${defect.id} в проекте «${PROJECT}»`);
    for (const expected of [`«${PROJECT}»`, 'Скол бетона', 'Новая', 'Высокий', 'Test engineer']) {
      assert.ok(mails[0].text!.includes(expected), `text has ${expected}:\n${mails[0].text}`);
    }
    assert.ok(mails[0].html!.includes('Скол бетона'));

    const newcomer = await system.api.createUser('engineer');
    await system.api.addMembers(projectId, owner.token, newcomer);
    assert.equal(
      (await system.api.patch(`/v1/defects/${defect.id}`, { assignee_id: newcomer.id }, owner.token)).status,
      200,
    );
    const reassigned = idOf(await eventFor('defect.assigned', defect.id, 1));
    await mailFor(reassigned, 1);
    await sentinel.settle({ handled: [reassigned] });
    assert.deepEqual(recipientsOf(sink.forEvent(reassigned)), [emailOf(newcomer)]);
    assert.equal(sink.to(emailOf(newcomer)).length, 1);

    const own = await createDefect(reporter, { title: 'Сам себе', assignee_id: reporter.id });
    const ownEvent = idOf(await eventFor('defect.assigned', own.id));
    await handled(ownEvent);
    assert.equal(sink.forEvent(ownEvent).length, 0);
  });

  it('when the same event is delivered twice, then its recipients still get one e-mail each', async () => {
    const defect = await createDefect(reporter, { title: 'Протечка кровли', assignee_id: assignee.id });
    assert.equal((await system.api.patch(`/v1/defects/${defect.id}`, { status: 'В работе' }, owner.token)).status, 200);
    const original = await eventFor('defect.status_changed', defect.id);
    const eventId = idOf(original);
    await mailFor(eventId, 2);
    const duplicates = async () =>
      (await scrapeMetrics(system.url)).value('events_consumed_total', {
        consumer: 'notifications.email',
        event_type: 'defect.status_changed',
        result: 'duplicate',
      });
    const duplicatesBefore = await duplicates();

    await withBroker(async (connection) => {
      const publisher = connection.createPublisher({ confirm: true });
      await publisher.send(
        {
          exchange: 'events',
          routingKey: original.routingKey,
          messageId: original.messageId,
          type: original.type,
          appId: original.appId,
          contentType: 'application/json',
          durable: true,
          headers: original.headers,
        },
        Buffer.from(JSON.stringify(original.body), 'utf8'),
      );
      await publisher.close();
    });
    // One queue, one message at a time: once a later event's mail is out, the copy was handled.
    // That later event is the sentinel here: published after the copy, it is handled after it.
    assert.equal((await system.api.patch(`/v1/defects/${defect.id}`, { status: 'Решена' }, owner.token)).status, 200);
    await mailFor(idOf(await eventFor('defect.status_changed', defect.id, 2)), 2); // [1] is the copy
    // The copy arrived and the inbox recognised it (counted once its batch committed).
    await eventually(
      async () => (await duplicates()) >= duplicatesBefore + 1,
      10_000,
      'the copy counted as a duplicate',
    );
    assert.equal(await duplicates(), duplicatesBefore + 1);
    assert.deepEqual(recipientsOf(sink.forEvent(eventId)), [emailOf(reporter), emailOf(assignee)].sort());
  });

  it('when a status change arrives before the events that say who and what it concerns, then it is retried and mailed once they are in', async () => {
    // Published by hand in this order; one queue, one message at a time: the status change is tried first.
    const reporterEmail = `early-reporter-${process.pid}@example.com`;
    const events = [
      createEvent(
        'defect.status_changed',
        { defect_id: 9001, old_status: 'Новая', new_status: 'Отменена', changed_by: 9003 },
        9003,
      ),
      createEvent(
        'user.registered',
        { user_id: 9001, username: 'early', email: reporterEmail, full_name: 'Ранний Автор', role: 'engineer' },
        9001,
      ),
      createEvent(
        'user.registered',
        { user_id: 9003, username: 'changer', email: 'changer@example.com', full_name: null, role: 'manager' },
        9003,
      ),
      createEvent('project.created', { project_id: 9001, name: 'Вне очереди', owner_id: 9003 }, 9003),
      createEvent(
        'defect.created',
        {
          defect_id: 9001,
          title: 'Раньше времени',
          status: 'Новая',
          priority: 'Низкий',
          project_id: 9001,
          reporter_id: 9001,
        },
        9001,
      ),
    ];
    await withBroker(async (connection) => {
      const publisher = connection.createPublisher({ confirm: true });
      for (const event of events) {
        await publisher.send(
          {
            exchange: 'events',
            routingKey: event.event_type,
            messageId: event.event_id,
            contentType: 'application/json',
            durable: true,
          },
          Buffer.from(JSON.stringify(event), 'utf8'),
        );
      }
      await publisher.close();
    });
    const eventId = events[0].event_id;
    const [mail] = await mailFor(eventId, 1);
    // It was retried: only its inbox entry says no attempt of it is still to come.
    await sentinel.settle({ handled: [eventId] });
    assert.deepEqual(recipientsOf(sink.forEvent(eventId)), [reporterEmail]);
    assert.equal(mail.subject, "Дефект #9001 изменил статус на 'Отменена'");
    assert.ok(mail.text!.includes('«Вне очереди»') && mail.text!.includes('Изменил: changer'), mail.text);
    const retried = system.logs.lines.filter(
      (line) => line.event_id === eventId && line.msg === 'event handler failed; will retry',
    );
    assert.ok(retried.length >= 1, 'it came first and was retried');
    assert.match(retried[0].err.message, /defect #9001 is not known yet/);
  });
});
