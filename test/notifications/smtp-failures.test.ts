import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { emailOf, type TestUser } from '../support/api-client.ts';
import { bindTestQueue, type TestQueue } from '../support/broker.ts';
import { createMailSentinel, smtpMailCounter, type MailSentinel } from '../support/sentinel.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';

const QUEUE = 'notifications.email';
const RETRY_DELAYS = ['200ms', '400ms'];

describe('notifications when the SMTP server fails (PostgreSQL, RabbitMQ)', () => {
  let sink: SmtpSink;
  let system: TestSystem;
  let events: TestQueue;
  let sentinel: MailSentinel;
  let owner: TestUser;
  let projectId: number;

  before(async () => {
    sink = await startSmtpSink();
    system = await startTestSystem({
      mode: 'postgres',
      env: { SMTP_URL: sink.url, EVENTS_RETRY_DELAYS: RETRY_DELAYS.join(',') },
    });
    events = await bindTestQueue(['defect.status_changed']);
    sentinel = createMailSentinel(system, smtpMailCounter(sink));
    owner = await system.api.createUser('manager');
    const project = await system.api.post('/v1/projects', { name: 'Жилой дом' }, owner.token);
    assert.equal(project.status, 201);
    projectId = project.body.id;
  });
  after(async () => {
    await events?.close();
    await system?.close();
    await sink?.close();
  });

  /** A defect reported by a fresh engineer and assigned to another; the owner then changes its status. */
  const statusChange = async (
    prepare: (people: { reporter: TestUser; assignee: TestUser }) => void | Promise<void>,
  ) => {
    const reporter = await system.api.createUser('engineer');
    const assignee = await system.api.createUser('engineer');
    await system.api.addMembers(projectId, owner.token, reporter, assignee);
    const created = await system.api.post(
      '/v1/defects',
      { project_id: projectId, title: 'Нет гидроизоляции', assignee_id: assignee.id },
      reporter.token,
    );
    assert.equal(created.status, 201);
    await eventually(() => sink.to(emailOf(assignee)).length === 1, 10_000, 'the assignment mail');
    await prepare({ reporter, assignee });
    assert.equal(
      (await system.api.patch(`/v1/defects/${created.body.id}`, { status: 'В работе' }, owner.token)).status,
      200,
    );
    const event = await eventually(
      () => events.messages.find((message) => message.body.data.defect_id === created.body.id),
      10_000,
      'the status_changed event',
    );
    return {
      reporter,
      assignee,
      defectId: created.body.id as number,
      eventId: (event.body as { event_id: string }).event_id,
    };
  };
  const recipientsOf = (eventId: string) =>
    sink
      .forEvent(eventId)
      .flatMap((mail) => mail.recipients)
      .sort();

  it('when the SMTP server refuses the first attempts (451), then the mail goes out on a retry, once per recipient', async () => {
    const { reporter, assignee, eventId } = await statusChange(({ reporter, assignee }) => {
      sink.refuse(emailOf(reporter), 2);
      sink.refuse(emailOf(assignee), 2);
    });
    await eventually(() => recipientsOf(eventId).length === 2, 15_000, 'both mails after the retries');
    // Its last attempt committed (in the inbox), and a marker mail shows any copy handled too.
    await sentinel.settle({ handled: [eventId] });
    assert.deepEqual(recipientsOf(eventId), [emailOf(reporter), emailOf(assignee)].sort());
    assert.equal(sink.refusals.get(emailOf(reporter)), 2);
    const retries = system.logs.lines.filter(
      (line) => line.event_id === eventId && line.msg === 'event handler failed; will retry',
    );
    assert.equal(retries.length, 2);
    assert.match(retries[0].err.message, /451/);
  });

  it('when the SMTP server takes the mail for one recipient and refuses it for the other, then the retries mail only the other: one e-mail each', async () => {
    const { reporter, assignee, eventId } = await statusChange(({ reporter }) => sink.refuse(emailOf(reporter), 2));
    await eventually(() => recipientsOf(eventId).length === 2, 15_000, 'both mails');
    // A retry that mailed the assignee again would have come before the inbox entry.
    await sentinel.settle({ handled: [eventId] });
    assert.deepEqual(
      recipientsOf(eventId),
      [emailOf(reporter), emailOf(assignee)].sort(),
      'the assignee was not mailed again on the retries',
    );
    assert.equal(sink.refusals.get(emailOf(reporter)), 2);
    const { rows } = await system.host.db.query(
      'SELECT recipient FROM notifications.sent_mail WHERE event_id = $1 ORDER BY recipient',
      [eventId],
    );
    assert.deepEqual(
      rows.map((row) => row.recipient),
      [emailOf(reporter), emailOf(assignee)].sort(),
    );
  });

  it('when the SMTP server refuses past the retry schedule, then the event is parked with the reason; replayed once SMTP accepts, it is mailed once', async () => {
    const { reporter, assignee, eventId } = await statusChange(({ reporter }) =>
      sink.refuse(emailOf(reporter), Infinity),
    );
    const parked = await eventually(
      async () => (await system.host.transport.deadLetters.list(QUEUE)).find((message) => message.id === eventId),
      15_000,
      'the event in the dead-letter queue',
    );
    assert.equal(parked.reason, 'retries_exhausted');
    assert.equal(parked.attempts, RETRY_DELAYS.length + 1);
    assert.equal(parked.eventType, 'defect.status_changed');
    assert.match(parked.error, /SMTP/);
    assert.match(parked.error, /451/);
    assert.match(parked.error, new RegExp(emailOf(reporter)));
    assert.deepEqual(
      recipientsOf(eventId),
      [emailOf(assignee)],
      'the assignee was mailed on the first attempt, and only then',
    );

    sink.accept(emailOf(reporter));
    assert.equal(await system.host.transport.deadLetters.replay(QUEUE, { id: eventId }), 1);
    await eventually(() => recipientsOf(eventId).length === 2, 10_000, 'the replayed mail');
    await sentinel.settle({ handled: [eventId] });
    assert.deepEqual(recipientsOf(eventId), [emailOf(reporter), emailOf(assignee)].sort());
    assert.equal(
      (await system.host.transport.deadLetters.list(QUEUE)).filter((message) => message.id === eventId).length,
      0,
    );
  });

  it('when the SMTP server refuses a recipient for good (550), then the event is parked at once, the others mailed once', async () => {
    const { reporter, assignee, eventId } = await statusChange(({ reporter }) =>
      sink.refuse(emailOf(reporter), Infinity, 550),
    );
    const parked = await eventually(
      async () => (await system.host.transport.deadLetters.list(QUEUE)).find((message) => message.id === eventId),
      10_000,
      'the event in the dead-letter queue',
    );
    assert.equal(parked.reason, 'permanent_failure');
    assert.equal(parked.attempts, 1);
    assert.match(parked.error, /550/);
    assert.deepEqual(recipientsOf(eventId), [emailOf(assignee)]);
    sink.accept(emailOf(reporter));
    await system.host.transport.deadLetters.purge(QUEUE, { id: eventId });
  });

  it('when the SMTP server is down, then the mail waits in the retries and goes out once, after it is back', async () => {
    const reporter = await system.api.createUser('engineer');
    await system.api.addMembers(projectId, owner.token, reporter);
    const created = await system.api.post(
      '/v1/defects',
      { project_id: projectId, title: 'Сырость в подвале' },
      reporter.token,
    );
    assert.equal(created.status, 201);
    await sink.stop();
    try {
      assert.equal(
        (await system.api.patch(`/v1/defects/${created.body.id}`, { status: 'В работе' }, owner.token)).status,
        200,
      );
      const event = await eventually(
        () => events.messages.find((message) => message.body.data.defect_id === created.body.id),
        10_000,
        'the status_changed event',
      );
      const eventId = (event.body as { event_id: string }).event_id;
      const failure = await eventually(
        () =>
          system.logs.lines.find(
            (line) => line.event_id === eventId && line.msg === 'event handler failed; will retry',
          ),
        10_000,
        'a failed attempt',
      );
      assert.match(failure.err.message, /ECONNREFUSED/);
      await sink.start();
      await eventually(() => recipientsOf(eventId).length === 1, 10_000, 'the mail once SMTP is back');
      await sentinel.settle({ handled: [eventId] });
      assert.deepEqual(recipientsOf(eventId), [emailOf(reporter)]);
    } finally {
      await sink.start();
    }
  });
});
