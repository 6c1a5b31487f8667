import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { emailOf, type TestUser } from '../support/api-client.ts';
import { withBroker } from '../support/broker.ts';
import { runDlq } from '../support/dlq-cli.ts';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

const CONSUMER = 'defects.project-directory';
const MAIL_CONSUMER = 'notifications.email';

/** What a broken publisher might send: not JSON, routed to the defects service's consumer. */
async function publishGarbage(count: number) {
  await withBroker(async (connection) => {
    const publisher = connection.createPublisher({ confirm: true });
    for (let index = 0; index < count; index += 1) {
      await publisher.send(
        { exchange: 'events', routingKey: 'project.created', durable: true },
        Buffer.from(`garbage ${index}`),
      );
    }
    await publisher.close();
  });
}

describe('dead letters: admin API and dlq command (RabbitMQ)', () => {
  let sink: SmtpSink;
  let system: TestSystem;
  let admin: TestUser;
  let engineer: TestUser;
  let manager: TestUser;
  const brokerEnv = () => ({ AMQP_URL: system.env.AMQP_URL, DATABASE_URL: system.env.DATABASE_URL });
  const parkedTotal = async (consumer: string) =>
    (await system.api.get(`/v1/admin/dead-letters?consumer=${consumer}`, admin.token)).body.total as number;
  /** Empties a consumer's dead letters, whatever an earlier test left there. */
  const purgeAll = async (consumer: string) => {
    const purged = await system.api.request('DELETE', `/v1/admin/dead-letters?consumer=${consumer}`, {
      token: admin.token,
    });
    assert.equal(purged.status, 200, JSON.stringify(purged.body));
    assert.equal(await parkedTotal(consumer), 0, `${consumer}'s dead letters purged`);
  };

  before(async () => {
    sink = await startSmtpSink();
    system = await startTestSystem({ mode: 'postgres', env: { SMTP_URL: sink.url } });
    admin = await system.api.createUser('admin');
    engineer = await system.api.createUser('engineer');
    manager = await system.api.createUser('manager');
  });
  after(async () => {
    await system?.close();
    await sink?.close();
  });

  it('when someone other than an admin asks, then it is forbidden; an unknown consumer or id is a clear 4xx', async () => {
    assert.equal((await system.api.get('/v1/admin/dead-letters', engineer.token)).status, 403);
    assert.equal((await system.api.get('/v1/admin/dead-letters')).status, 401);
    const unknownConsumer = await system.api.get('/v1/admin/dead-letters?consumer=nobody', admin.token);
    assert.equal(unknownConsumer.status, 422);
    assert.match(unknownConsumer.body.detail, /Unknown consumer 'nobody'/);
    const unknownId = await system.api.request('POST', '/v1/admin/dead-letters/no-such-id/replay', {
      token: admin.token,
    });
    assert.equal(unknownId.status, 404);
  });

  describe('with three garbage messages parked at each consumer', () => {
    beforeEach(async () => {
      await purgeAll(CONSUMER);
      await purgeAll(MAIL_CONSUMER);
      await publishGarbage(3);
      // project.created reaches the notifications' queue too, where the garbage is parked as well.
      await eventually(
        async () => {
          const totals = [await parkedTotal(CONSUMER), await parkedTotal(MAIL_CONSUMER)];
          if (totals.every((total) => total === 3)) return true;
          throw new Error(`parked so far ${totals.join(' and ')}`);
        },
        10_000,
        'three parked messages at each consumer',
      );
    });

    it('when an admin lists dead letters, then each shows consumer, reason, attempts and the body as received', async () => {
      const response = await system.api.get(`/v1/admin/dead-letters?consumer=${CONSUMER}`, admin.token);
      assert.equal(response.status, 200);
      assert.equal(response.body.items.length, 3);
      for (const item of response.body.items) {
        assert.equal(item.consumer, CONSUMER);
        assert.equal(item.reason, 'invalid_message');
        assert.equal(item.attempts, 1);
        assert.match(item.error, /not valid JSON/);
        assert.match(item.body, /^garbage \d$/);
      }
      const one = await system.api.get(`/v1/admin/dead-letters/${response.body.items[0].id}`, admin.token);
      assert.equal(one.status, 200);
      assert.equal(one.body.id, response.body.items[0].id);
    });

    it('the dlq command lists one line per message and purges one by id', async () => {
      const listed = await runDlq(['list', '--consumer', CONSUMER], brokerEnv());
      assert.equal(listed.code, 0, listed.stderr);
      const lines = listed.stdout.trim().split('\n');
      assert.equal(lines.length, 3);
      const [consumer, eventType, id, attempts, reason] = lines[0].split('\t');
      assert.deepEqual([consumer, eventType, attempts, reason], [CONSUMER, '-', 'attempts=1', 'invalid_message']);

      const shown = await runDlq(['show', id], brokerEnv());
      assert.equal(shown.code, 0);
      assert.equal(JSON.parse(shown.stdout).id, id);

      const purged = await runDlq(['purge', id, '--consumer', CONSUMER], brokerEnv());
      assert.equal(purged.stdout.trim(), 'purged 1');
      const after = await system.api.get(`/v1/admin/dead-letters?consumer=${CONSUMER}`, admin.token);
      assert.equal(after.body.total, 2);
      assert.ok(!after.body.items.some((item: any) => item.id === id));

      const usage = await runDlq(['replay'], brokerEnv());
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /usage:/);
    });

    it('when all are replayed, then they go back to the consumer (and, still not events, are parked again)', async () => {
      const listed = async () =>
        (await system.api.get(`/v1/admin/dead-letters?consumer=${CONSUMER}`, admin.token)).body.items as Array<{
          id: string;
          parkedAt: string;
          attempts: number;
        }>;
      const before = await listed();
      assert.equal(before.length, 3);
      const replayed = await system.api.request('POST', `/v1/admin/dead-letters/replay?consumer=${CONSUMER}`, {
        token: admin.token,
      });
      assert.equal(replayed.status, 200);
      assert.equal(replayed.body.replayed, 3);
      // The same three, each parked again after the replay: they went round the consumer.
      const parkedAgain = await eventually(
        async () => {
          const now = await listed();
          return now.length === 3 &&
            now.every((item) => before.some((old) => old.id === item.id && item.parkedAt > old.parkedAt))
            ? now
            : undefined;
        },
        10_000,
        'all three parked again, later than before',
      );
      assert.deepEqual(
        parkedAgain.map((item) => item.attempts),
        [1, 1, 1],
      );
      const purged = await system.api.request('DELETE', `/v1/admin/dead-letters?consumer=${CONSUMER}`, {
        token: admin.token,
      });
      assert.deepEqual(purged.body, { purged: 3 });
    });
  });

  it('when parked events are replayed, one by id and then all, then each is handled once: its mail arrives once, the event log says handled, and it leaves the list', async () => {
    // Only this test's events in the notifications' dead letters, so that totals count them.
    await purgeAll(MAIL_CONSUMER);

    // The engineer's mail server refuses for good (550): each assignment mail parks its event at once.
    sink.refuse(emailOf(engineer), Infinity, 550);
    const project = (await system.api.post('/v1/projects', { name: 'Мастерская' }, manager.token)).body;
    await system.api.addMembers(project.id, manager.token, engineer);
    const eventIds: string[] = [];
    for (const title of ['Скрипит дверь', 'Течёт кран', 'Мигает лампа']) {
      const defect = await system.api.post(
        '/v1/defects',
        { project_id: project.id, title, assignee_id: engineer.id },
        manager.token,
      );
      assert.equal(defect.status, 201);
      const assigned = await eventually(
        async () => {
          const page = await system.api.get(
            `/v1/events?event_type=defect.assigned&defect_id=${defect.body.id}`,
            admin.token,
          );
          return page.body.items[0];
        },
        10_000,
        `the assignment of defect ${defect.body.id} recorded`,
      );
      eventIds.push(assigned.event_id);
    }
    const mailStatus = async (eventId: string) => {
      const response = await system.api.get(`/v1/events/${eventId}`, admin.token);
      return response.body.deliveries?.find((delivery: any) => delivery.consumer === MAIL_CONSUMER)?.status as
        string | undefined;
    };
    await eventually(async () => (await parkedTotal(MAIL_CONSUMER)) === 3, 10_000, 'the three assignments parked');
    for (const eventId of eventIds) assert.equal(await mailStatus(eventId), 'parked');
    assert.deepEqual(sink.to(emailOf(engineer)), [], 'nothing reached the engineer yet');
    sink.accept(emailOf(engineer));

    const [first, ...rest] = eventIds;
    const one = await system.api.request('POST', `/v1/admin/dead-letters/${first}/replay?consumer=${MAIL_CONSUMER}`, {
      token: admin.token,
    });
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, { replayed: 1 });
    // The handled report goes out after the mail was sent and recorded: by then its mail is here.
    await eventually(async () => (await mailStatus(first)) === 'handled', 10_000, 'the replayed event handled');
    assert.equal(sink.forEvent(first).length, 1, 'one mail for the replayed event');
    assert.deepEqual(sink.forEvent(first)[0].recipients, [emailOf(engineer)]);
    for (const eventId of rest) assert.deepEqual(sink.forEvent(eventId), [], 'the others still parked, not sent');
    const left = (await system.api.get(`/v1/admin/dead-letters?consumer=${MAIL_CONSUMER}`, admin.token)).body;
    assert.deepEqual(
      left.items.map((item: any) => item.id).sort(),
      [...rest].sort(),
      'only the replayed one left the list',
    );

    const all = await system.api.request('POST', `/v1/admin/dead-letters/replay?consumer=${MAIL_CONSUMER}`, {
      token: admin.token,
    });
    assert.equal(all.status, 200);
    assert.deepEqual(all.body, { replayed: 2 });
    for (const eventId of rest)
      await eventually(
        async () => (await mailStatus(eventId)) === 'handled',
        10_000,
        `replayed event ${eventId} handled`,
      );
    for (const eventId of eventIds) assert.equal(sink.forEvent(eventId).length, 1, `one mail for ${eventId}`);
    assert.equal(sink.to(emailOf(engineer)).length, 3);
    assert.equal(await parkedTotal(MAIL_CONSUMER), 0);
  });
});

describe('dead letters: dlq command in embedded mode', () => {
  it('when the embedded server is running, then the command refuses and points to the admin API', async () => {
    const system = await startTestSystem({ mode: 'embedded' });
    try {
      const result = await runDlq(['list'], { DATA_DIR: system.env.DATA_DIR, PORT: system.env.PORT });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /in use by the running server/);
    } finally {
      await system.close({ keepData: true });
    }
    const stopped = await runDlq(['list'], { DATA_DIR: system.env.DATA_DIR, PORT: system.env.PORT });
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout.trim(), 'no parked messages');
    await fs.rm(system.env.DATA_DIR, { recursive: true, force: true });
  });
});
