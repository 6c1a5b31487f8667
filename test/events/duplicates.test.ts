import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createEvent, type EventEnvelope } from '../../src/platform/events/envelope.ts';
import type { DeliveryReport, OutgoingMessage } from '../../src/platform/events/transport.ts';
import { CONSUMER_NAMES } from '../../src/services/consumer-names.ts';
import { emailOf, type TestUser } from '../support/api-client.ts';
import { withBroker } from '../support/broker.ts';
import { scrapeMetrics } from '../support/metrics.ts';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';
import { eventually, MODES, startTestSystem, type TestSystem } from '../support/test-system.ts';
import { eventBytes, publishEvents, publishReports } from '../support/wire-events.ts';

// The same event (same event_id) delivered twice to each of the services' consumers: both
// copies taken together (one batch, one transaction, or both in hand at once), and a copy
// that comes after the first was handled. Each must have its effect once, and each second
// copy must be seen and skipped: events_consumed_total{result="duplicate"} moves by exactly
// the number of copies sent twice. On RabbitMQ the copies are published straight to the
// `events` exchange, as a relay publishing a confirmed batch again would; embedded, they are
// handed to the in-process transport twice, as a relay would hand them over again.

const {
  eventLogRecorder: RECORDER,
  notificationsEmail: NOTIFICATIONS,
  defectsProjectDirectory: DIRECTORY,
} = CONSUMER_NAMES;

/**
 * Runs rounds (each sends copies back to back and checks their effects) until one shows the
 * copies were taken together. On RabbitMQ, whether two messages published back to back reach
 * a batch consumer within its batch's wait (2 ms, or one turn of the event loop) depends on
 * the machine's load; a round where they did not is still a duplicate across batches, checked
 * all the same. Embedded, the first round always does (the copies become due in one transaction).
 */
async function untilTakenTogether(round: () => Promise<boolean>, maxRounds = 30): Promise<number> {
  for (let rounds = 1; rounds <= maxRounds; rounds += 1) {
    if (await round()) return rounds;
  }
  throw new Error(
    `in ${maxRounds} rounds (all of them run, each a duplicate across batches) the copies were never taken together`,
  );
}

for (const mode of MODES) {
  describe(`duplicates on every consumer path (${mode})`, () => {
    let sink: SmtpSink;
    let system: TestSystem;
    let admin: TestUser;
    let manager: TestUser;
    let engineer: TestUser;
    let projectId: number;
    let defectId: number;

    /** Delivers the events in the order given, next to each other, as one relay batch would. */
    const deliver = async (events: EventEnvelope[]) => {
      if (mode === 'postgres') return publishEvents(events);
      const messages: OutgoingMessage[] = events.map((event) => ({
        routingKey: event.event_type,
        messageId: event.event_id,
        type: event.event_type,
        appId: 'test-relay',
        timestamp: new Date(),
        body: eventBytes(event),
        headers: {},
      }));
      // One transaction: the copies become due in every bound queue at once.
      await system.host.db.transaction((tx) => system.host.transport.handOver!(tx, messages));
    };

    const consumed = async (consumer: string, result: 'ok' | 'duplicate') =>
      (await scrapeMetrics(system.url)).value('events_consumed_total', { consumer, result });

    /**
     * The counter reaches `expected` and is exactly that. Called once the events sent after the
     * copies are committed: a copy's count follows its transaction's commit by a moment, and
     * every copy came before them, so nothing can count later.
     */
    const assertConsumed = async (consumer: string, result: 'ok' | 'duplicate', expected: number, what: string) => {
      await eventually(
        async () => (await consumed(consumer, result)) >= expected,
        10_000,
        `${consumer} ${result} to reach ${expected}`,
      );
      assert.equal(await consumed(consumer, result), expected, what);
    };

    const inInbox = async (schema: string, consumer: string, eventId: string) =>
      (
        await system.host.db.query(`SELECT 1 FROM ${schema}.inbox WHERE consumer = $1 AND event_id = $2`, [
          consumer,
          eventId,
        ])
      ).rows.length > 0;

    /**
     * Whether two events were claimed in one transaction: the inbox's handled_at defaults to
     * now(), the transaction's start. A copy published between them was in that batch too
     * (a batch is what arrived one after the other, in order).
     */
    const claimedTogether = async (schema: string, consumer: string, first: string, last: string) => {
      const { rows } = await system.host.db.query<{ handled_at: Date }>(
        `SELECT handled_at FROM ${schema}.inbox WHERE consumer = $1 AND event_id = ANY($2::uuid[])`,
        [consumer, [first, last]],
      );
      return rows.length === 2 && rows[0].handled_at.getTime() === rows[1].handled_at.getTime();
    };

    const recorded = async (eventType: string, eventId: string) => {
      const page = await system.api.get(`/v1/events?event_type=${eventType}&limit=100`, admin.token);
      return (page.body.items as EventEnvelope[]).filter((event) => event.event_id === eventId).length;
    };

    /** A crafted assignment of the defect to the engineer, by the manager: one mail to the engineer. */
    const assignment = () =>
      createEvent(
        'defect.assigned',
        { defect_id: defectId, assignee_id: engineer.id, assigned_by: manager.id },
        manager.id,
      );

    before(async () => {
      sink = await startSmtpSink();
      // Many assignments of one defect to one person: the assignment-mail limit (its own test)
      // would hold back the mails these tests count.
      system = await startTestSystem({ mode, env: { SMTP_URL: sink.url, ASSIGNMENT_MAILS_PER_HOUR: '1000' } });
      admin = await system.api.createUser('admin');
      manager = await system.api.createUser('manager');
      engineer = await system.api.createUser('engineer');
      projectId = (await system.api.post('/v1/projects', { name: 'Дубли' }, manager.token)).body.id;
      await system.api.addMembers(projectId, manager.token, engineer);
      defectId = (
        await system.api.post(
          '/v1/defects',
          { project_id: projectId, title: 'Двойник', assignee_id: engineer.id },
          manager.token,
        )
      ).body.id;
      // Notifications knows the defect once its creation's mail to the assignee is out.
      await eventually(() => sink.to(emailOf(engineer)).length === 1, 10_000, 'the first assignment mail');
    });
    after(async () => {
      await system?.close();
      await sink?.close();
    });

    describe(`${RECORDER}: the event listed once`, () => {
      // user.enabled: an event only the recorder is bound to, so nothing else acts on it (a
      // role change would now also revoke the user's tokens in every process).
      const userEnabled = () => createEvent('user.enabled', { user_id: engineer.id, enabled_by: admin.id }, admin.id);
      let twice: EventEnvelope;

      it('when both copies are taken in one batch, then the event is recorded once and the second copy counted as a duplicate', async () => {
        const duplicatesBefore = await consumed(RECORDER, 'duplicate');
        const rounds = await untilTakenTogether(async () => {
          twice = userEnabled();
          const after = userEnabled();
          await deliver([twice, twice, after]);
          // The batch that claimed `after` also took both copies before it (in order, one queue).
          await eventually(
            () => inInbox('event_log', RECORDER, after.event_id),
            10_000,
            'the event after the copies recorded',
          );
          assert.equal(await recorded('user.enabled', twice.event_id), 1);
          return claimedTogether('event_log', RECORDER, twice.event_id, after.event_id);
        });
        await assertConsumed(
          RECORDER,
          'duplicate',
          duplicatesBefore + rounds,
          `one duplicate per round (${rounds} rounds)`,
        );
      });

      it('when a copy comes after the event was recorded, then it is skipped: still listed once', async () => {
        const duplicatesBefore = await consumed(RECORDER, 'duplicate');
        const marker = userEnabled();
        await deliver([twice]);
        await deliver([marker]);
        // Batches are written one after the other, in the queue's order: the marker's is after the copy's.
        await eventually(() => inInbox('event_log', RECORDER, marker.event_id), 10_000, 'the marker recorded');
        assert.equal(await recorded('user.enabled', twice.event_id), 1);
        await assertConsumed(RECORDER, 'duplicate', duplicatesBefore + 1, 'the copy skipped');
      });
    });

    describe(`${NOTIFICATIONS}: the mail sent once`, () => {
      let twice: EventEnvelope;

      it('when both copies are handled in one transaction, then one mail goes out and the second copy is counted as a duplicate', async () => {
        const duplicatesBefore = await consumed(NOTIFICATIONS, 'duplicate');
        const rounds = await untilTakenTogether(async () => {
          twice = assignment();
          const after = assignment();
          await deliver([twice, twice, after]);
          // One queue, one event after the other: once the event after the copies has mailed, both copies were handled.
          await eventually(
            () => sink.forEvent(after.event_id).length === 1,
            10_000,
            'the mail of the event after the copies',
          );
          await eventually(
            () => inInbox('notifications', NOTIFICATIONS, after.event_id),
            10_000,
            'the event after the copies committed',
          );
          assert.equal(sink.forEvent(twice.event_id).length, 1, 'one mail for the event sent twice');
          assert.deepEqual(sink.forEvent(twice.event_id)[0].recipients, [emailOf(engineer)]);
          return claimedTogether('notifications', NOTIFICATIONS, twice.event_id, after.event_id);
        });
        await assertConsumed(
          NOTIFICATIONS,
          'duplicate',
          duplicatesBefore + rounds,
          `one duplicate per round (${rounds} rounds)`,
        );
      });

      it('when a copy comes after the mail went out, then no second mail', async () => {
        const duplicatesBefore = await consumed(NOTIFICATIONS, 'duplicate');
        const marker = assignment();
        await deliver([twice]);
        await deliver([marker]);
        await eventually(() => sink.forEvent(marker.event_id).length === 1, 10_000, "the marker's mail");
        // Its mail goes out inside its transaction: wait for the commit too.
        await eventually(
          () => inInbox('notifications', NOTIFICATIONS, marker.event_id),
          10_000,
          'the marker committed',
        );
        assert.equal(sink.forEvent(twice.event_id).length, 1, 'still one mail');
        await assertConsumed(NOTIFICATIONS, 'duplicate', duplicatesBefore + 1, 'the copy skipped');
      });
    });

    describe(`${DIRECTORY}: a deleted project's defects deleted once`, () => {
      let doomedProject: number;
      let deletion: EventEnvelope;

      const defectDeletions = async (project: number) => {
        const page = await system.api.get(
          `/v1/events?event_type=defect.deleted&project_id=${project}&limit=100`,
          admin.token,
        );
        return (page.body.items as EventEnvelope[])
          .map((event) => (event.data as { defect_id: number }).defect_id)
          .sort((a, b) => a - b);
      };

      it('when both copies of project.deleted are in hand at once, then its defects are deleted once and the second copy is counted as a duplicate', async () => {
        doomedProject = (await system.api.post('/v1/projects', { name: 'На снос' }, manager.token)).body.id;
        const doomedDefects: number[] = [];
        for (const title of ['Первый', 'Второй']) {
          doomedDefects.push(
            (await system.api.post('/v1/defects', { project_id: doomedProject, title }, manager.token)).body.id,
          );
        }
        const duplicatesBefore = await consumed(DIRECTORY, 'duplicate');
        const handledBefore = await consumed(DIRECTORY, 'ok');
        deletion = createEvent('project.deleted', { project_id: doomedProject, deleted_by: manager.id }, manager.id);

        if (mode === 'postgres') {
          // Hold the project's row so that the first copy's handler waits inside its transaction,
          // its inbox claim made and not committed; the second copy's claim then waits for it.
          // Both are in hand at once (prefetch 10) before either commits.
          const blocker = new pg.Client({ connectionString: system.env.DATABASE_URL });
          await blocker.connect();
          try {
            await blocker.query('BEGIN');
            await blocker.query('SELECT 1 FROM defects.known_projects WHERE id = $1 FOR UPDATE', [doomedProject]);
            await deliver([deletion, deletion]);
            // Counted by statement, as crash-harness's waitForBlockedStatement does: another
            // session of this database waiting for some lock must not pass for a copy.
            const waitingOn = async (statement: string) => {
              const { rows } = await blocker.query<{ waiting: number }>(
                `SELECT count(*)::int AS waiting FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock' AND ltrim(query, E' \\n\\t\\r') LIKE $1 || '%'`,
                [statement],
              );
              return rows[0].waiting;
            };
            let waiting = '';
            await eventually(
              async () => {
                // The first copy's handler, waiting for the held row; the second copy's inbox claim, waiting for the first's.
                const handler = await waitingOn('INSERT INTO defects.known_projects');
                const claim = await waitingOn('INSERT INTO defects.inbox');
                waiting = `handler ${handler}, claim ${claim}`;
                return handler === 1 && claim === 1;
              },
              10_000,
              'both copies waiting in their transactions',
            ).catch((error: Error) => {
              throw new Error(`${error.message} (sessions waiting: ${waiting})`, { cause: error });
            });
            await blocker.query('COMMIT');
          } finally {
            await blocker.end();
          }
        } else {
          // Stored in the queue in one transaction: the queue's worker takes both in one batch.
          await deliver([deletion, deletion]);
        }
        // Every delivery counts once, handled or skipped: both copies are through when the sum moved by two.
        await eventually(
          async () =>
            (await consumed(DIRECTORY, 'duplicate')) + (await consumed(DIRECTORY, 'ok')) >=
            duplicatesBefore + handledBefore + 2,
          10_000,
          'both copies through',
        );
        assert.equal(await consumed(DIRECTORY, 'duplicate'), duplicatesBefore + 1, 'the second copy skipped');
        assert.equal(await consumed(DIRECTORY, 'ok'), handledBefore + 1, 'the first handled');
        for (const id of doomedDefects)
          assert.equal((await system.api.get(`/v1/defects/${id}`, manager.token)).status, 404);
        await eventually(
          async () => (await defectDeletions(doomedProject)).length >= doomedDefects.length,
          10_000,
          'the defect.deleted events recorded',
        );
        assert.deepEqual(await defectDeletions(doomedProject), doomedDefects, 'one defect.deleted per defect');
      });

      it('when a copy comes after the project was handled, then it deletes nothing: a defect added since stays', async () => {
        // A defect of the deleted project that the first handling did not see (the API refuses
        // to create one now, so it goes straight into the table): a second run of the handler
        // would delete it; a skipped copy leaves it.
        const { rows } = await system.host.db.query<{ id: number }>(
          `INSERT INTO defects.defects (project_id, title, status, priority, reporter_id)
           SELECT $1, 'Опоздавший', status, priority, reporter_id FROM defects.defects WHERE id = $2 RETURNING id`,
          [doomedProject, defectId],
        );
        const straggler = rows[0].id;
        const duplicatesBefore = await consumed(DIRECTORY, 'duplicate');
        const handledBefore = await consumed(DIRECTORY, 'ok');
        await deliver([deletion]);
        // The counters move after the copy's transaction committed: by then a second run would have deleted the straggler.
        await eventually(
          async () =>
            (await consumed(DIRECTORY, 'duplicate')) + (await consumed(DIRECTORY, 'ok')) >=
            duplicatesBefore + handledBefore + 1,
          10_000,
          'the copy through',
        );
        assert.equal(
          (await system.host.db.query('SELECT 1 FROM defects.defects WHERE id = $1', [straggler])).rows.length,
          1,
          'the straggler is still there',
        );
        assert.equal(await consumed(DIRECTORY, 'duplicate'), duplicatesBefore + 1, 'the copy skipped');
        assert.equal(await consumed(DIRECTORY, 'ok'), handledBefore, 'the handler did not run');
      });
    });

    describe(`${CONSUMER_NAMES.eventLogDeliveries}: one status per event and consumer`, () => {
      it("when an event was delivered twice to every consumer, then each consumer's status is one entry, handled, first attempt", async () => {
        const twice = assignment();
        const marker = assignment();
        await deliver([twice, twice]);
        await deliver([marker]);
        await eventually(() => sink.forEvent(marker.event_id).length === 1, 10_000, "the marker's mail");
        // Each consumer reported both copies as handled; the reports of the marker come after.
        const deliveries = await eventually(
          async () => {
            const [copy, last] = await Promise.all(
              [twice, marker].map(
                async (event) => (await system.api.get(`/v1/events/${event.event_id}`, admin.token)).body.deliveries,
              ),
            );
            return copy?.length === 2 && last?.length === 2 ? copy : undefined;
          },
          10_000,
          'the delivery statuses of the copies and the marker',
        );
        assert.deepEqual(
          deliveries.map((delivery: any) => [delivery.consumer, delivery.status, delivery.attempt]),
          [
            [RECORDER, 'handled', 1],
            [NOTIFICATIONS, 'handled', 1],
          ],
        );
      });

      if (mode === 'postgres') {
        const CONSUMER = 'test.duplicate-reports';
        const report = (
          eventId: string,
          status: DeliveryReport['status'],
          attempt: number,
          at: Date,
        ): DeliveryReport => ({
          event_id: eventId,
          event_type: 'defect.assigned',
          consumer: CONSUMER,
          status,
          attempt,
          next_attempt_at: status === 'retrying' ? new Date(at.getTime() + 1_000).toISOString() : null,
          error: status === 'retrying' ? 'first attempt failed' : null,
          reason: null,
          at: at.toISOString(),
        });
        const statusOf = async (eventId: string) =>
          (
            await system.host.db.query(
              'SELECT status, attempt FROM event_log.deliveries WHERE event_id = $1 AND consumer = $2',
              [eventId, CONSUMER],
            )
          ).rows;
        /** A report published after the others: stored once every report before it was (one queue, batches in order). */
        const settleReports = async () => {
          const sentinel = randomUUID();
          await publishReports([{ consumer: CONSUMER, reports: [report(sentinel, 'handled', 1, new Date())] }]);
          await eventually(async () => (await statusOf(sentinel)).length === 1, 10_000, 'the sentinel report stored');
        };
        // Declared as the transport declares it (it does so once it first parks a report).
        const parkedReports = () =>
          withBroker(
            async (connection) =>
              (await connection.queueDeclare({ queue: `${CONSUMER_NAMES.eventLogDeliveries}.dlq`, durable: true }))
                .messageCount,
          );

        it('when reports are delivered twice, in one message, in two at once and later, then one row: the newest status', async () => {
          const retrying = new Date(Date.now() - 2_000);
          const handled = new Date(Date.now() - 1_000);
          const inOneMessage = randomUUID();
          const inTwoMessages = randomUUID();
          await publishReports([
            // The same report twice in one message, with the newer one between them.
            {
              consumer: CONSUMER,
              reports: [
                report(inOneMessage, 'retrying', 1, retrying),
                report(inOneMessage, 'handled', 2, handled),
                report(inOneMessage, 'retrying', 1, retrying),
              ],
            },
            // The same message twice, back to back.
            { consumer: CONSUMER, reports: [report(inTwoMessages, 'handled', 2, handled)] },
            { consumer: CONSUMER, reports: [report(inTwoMessages, 'handled', 2, handled)] },
          ]);
          await settleReports();
          assert.deepEqual(await statusOf(inOneMessage), [{ status: 'handled', attempt: 2 }]);
          assert.deepEqual(await statusOf(inTwoMessages), [{ status: 'handled', attempt: 2 }]);

          // A late copy of the older report: the newer status stays.
          await publishReports([{ consumer: CONSUMER, reports: [report(inOneMessage, 'retrying', 1, retrying)] }]);
          await publishReports([{ consumer: CONSUMER, reports: [report(inTwoMessages, 'handled', 2, handled)] }]);
          await settleReports();
          assert.deepEqual(await statusOf(inOneMessage), [{ status: 'handled', attempt: 2 }]);
          assert.deepEqual(await statusOf(inTwoMessages), [{ status: 'handled', attempt: 2 }]);
          assert.equal(await parkedReports(), 0, 'no report parked');
        });
      }
    });
  });
}
