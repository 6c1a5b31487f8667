import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { emailOf, type TestUser } from '../support/api-client.ts';
import { startTcpProxy, type TcpProxy } from '../support/broker.ts';
import { amqpUrlThroughPort, testBrokerAddress } from '../support/environment.ts';
import { scrapeMetrics } from '../support/metrics.ts';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

describe('metrics move when what they count happens', () => {
  let proxy: TcpProxy;
  let sink: SmtpSink;
  let system: TestSystem;
  let manager: TestUser;
  let engineer: TestUser;
  let projectId: number;
  const metrics = () => scrapeMetrics(system.url);

  before(async () => {
    proxy = await startTcpProxy(testBrokerAddress());
    sink = await startSmtpSink();
    system = await startTestSystem({
      mode: 'postgres',
      env: {
        AMQP_URL: amqpUrlThroughPort(proxy.port),
        SMTP_URL: sink.url,
        EVENTS_RETRY_DELAYS: '200ms,400ms',
        // These tests read the gauges right after what they count happened: a short reuse of
        // one reading (operator-endpoints.test.ts tests the sharing itself).
        METRICS_REFRESH_INTERVAL: '100ms',
      },
    });
    manager = await system.api.createUser('manager');
    engineer = await system.api.createUser('engineer');
    projectId = (await system.api.post('/v1/projects', { name: 'Мост' }, manager.token)).body.id;
    await system.api.addMembers(projectId, manager.token, engineer);
  });
  after(async () => {
    await system?.close();
    await sink?.close();
    await proxy?.close();
  });

  /**
   * A defect the manager reports, assigned to the engineer, who starts work on it: one mail to
   * the engineer (the assignment), one to the manager (the status change).
   */
  const walkthrough = async () => {
    const defect = await system.api.post(
      '/v1/defects',
      { project_id: projectId, title: 'Скол', assignee_id: engineer.id },
      manager.token,
    );
    assert.equal(defect.status, 201);
    const moved = await system.api.patch(`/v1/defects/${defect.body.id}`, { status: 'В работе' }, engineer.token);
    assert.equal(moved.status, 200);
    return defect.body.id as number;
  };

  it('the seed walkthrough counts published and consumed events, handler and delivery times, and HTTP requests', async () => {
    const before = await metrics();
    await walkthrough();
    await eventually(
      async () =>
        (await metrics()).value('events_consumed_total', {
          consumer: 'notifications.email',
          event_type: 'defect.status_changed',
          result: 'ok',
        }) >
        before.value('events_consumed_total', {
          consumer: 'notifications.email',
          event_type: 'defect.status_changed',
          result: 'ok',
        }),
      10_000,
      'the status change consumed',
    );
    const now = await metrics();
    const delta = (name: string, labels: Record<string, string>) =>
      now.value(name, labels) - before.value(name, labels);

    for (const type of ['defect.created', 'defect.status_changed', 'defect.updated', 'defect.assigned']) {
      assert.equal(delta('events_published_total', { service: 'defects', event_type: type }), 1, type);
    }
    await eventually(
      async () =>
        (await metrics()).value('events_consumed_total', { consumer: 'event-log.recorder', result: 'ok' }) -
          before.value('events_consumed_total', { consumer: 'event-log.recorder', result: 'ok' }) >=
        4,
      10_000,
      'the event log recorded all four',
    );
    assert.ok(
      delta('event_handler_duration_seconds_count', {
        consumer: 'notifications.email',
        event_type: 'defect.status_changed',
      }) >= 1,
    );
    assert.ok(delta('event_delivery_latency_seconds_count', { consumer: 'notifications.email' }) >= 1);
    assert.equal(delta('http_requests_total', { method: 'PATCH', route: '/v1/defects/:id', status: '200' }), 1);
    assert.equal(delta('http_requests_total', { method: 'POST', route: '/v1/defects', status: '201' }), 1);
    assert.equal(now.value('outbox_pending_events', { service: 'defects' }), 0);
    assert.ok(now.has('process_resident_memory_bytes'), 'process defaults');
  });

  it('a failing delivery counts a retry, then ok; one failing past the schedule counts a dead letter and shows in dead_letter_messages', async () => {
    const labels = { consumer: 'notifications.email', event_type: 'defect.status_changed' };
    const countOf = (snapshot: Awaited<ReturnType<typeof metrics>>, result: string) =>
      snapshot.value('events_consumed_total', { ...labels, result });
    const before = await metrics();
    sink.refuse(emailOf(manager), 1, 451);
    await walkthrough();
    const afterRetry = await eventually(
      async () => {
        const current = await metrics();
        return countOf(current, 'ok') > countOf(before, 'ok') ? current : undefined;
      },
      10_000,
      'delivered after the retry',
    );
    assert.equal(countOf(afterRetry, 'retry') - countOf(before, 'retry'), 1, 'one retry of the status change');
    // Read from the broker at scrape time; NaN while the count cannot be read (never 0 by default).
    const parkedNow = await eventually(
      async () => {
        const value = (await metrics()).value('dead_letter_messages', { consumer: 'notifications.email' });
        return Number.isNaN(value) ? undefined : { value };
      },
      5_000,
      'a readable dead-letter count',
    );
    assert.equal(parkedNow.value, 0, 'nothing parked after a successful retry');

    sink.refuse(emailOf(manager), 100, 451);
    await walkthrough();
    const parked = await eventually(
      async () => {
        const current = await metrics();
        return current.value('dead_letter_messages', { consumer: 'notifications.email' }) === 1 ? current : undefined;
      },
      10_000,
      'the parked message counted',
    );
    const consumed = (snapshot: typeof parked) =>
      JSON.stringify(
        snapshot.samples.filter(
          (sample) => sample.name === 'events_consumed_total' && sample.labels.consumer === 'notifications.email',
        ),
      );
    assert.equal(countOf(parked, 'dead_letter') - countOf(before, 'dead_letter'), 1, consumed(parked));
    assert.equal(
      countOf(parked, 'retry') - countOf(afterRetry, 'retry'),
      2,
      `a retry after each delay of the schedule, then parked: ${consumed(parked)}`,
    );
    sink.accept(emailOf(manager));
  });

  it('during a broker outage the outbox backlog and its age rise and publish errors count; after it the backlog drains to 0', async () => {
    await proxy.stop();
    for (let i = 0; i < 3; i += 1) {
      assert.equal(
        (await system.api.post('/v1/defects', { project_id: projectId, title: `Во время аварии ${i}` }, manager.token))
          .status,
        201,
      );
    }
    const during = await eventually(
      async () => {
        const current = await metrics();
        return current.value('outbox_pending_events', { service: 'defects' }) === 3 &&
          current.value('events_publish_errors_total', { service: 'defects' }) > 0
          ? current
          : undefined;
      },
      15_000,
      'the backlog and publish errors',
    );
    assert.ok(during.value('outbox_oldest_pending_age_seconds', { service: 'defects' }) > 0);

    await proxy.start();
    const drained = await eventually(
      async () => {
        const current = await metrics();
        return current.value('outbox_pending_events', { service: 'defects' }) === 0 ? current : undefined;
      },
      20_000,
      'the backlog drained',
    );
    assert.equal(drained.value('outbox_oldest_pending_age_seconds', { service: 'defects' }), 0);
  });
});
