import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestUser } from '../support/api-client.ts';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('delivery status and request tracing', () => {
  let sink: SmtpSink;
  let system: TestSystem;
  let admin: TestUser;
  let manager: TestUser;
  let engineer: TestUser;
  let projectId: number;

  before(async () => {
    sink = await startSmtpSink();
    system = await startTestSystem({
      mode: 'postgres',
      env: { SMTP_URL: sink.url, EVENTS_RETRY_DELAYS: '1500ms,1500ms' },
    });
    admin = await system.api.createUser('admin');
    manager = await system.api.createUser('manager');
    engineer = await system.api.createUser('engineer');
    projectId = (await system.api.post('/v1/projects', { name: 'Школа' }, manager.token)).body.id;
    await system.api.addMembers(projectId, manager.token, engineer);
  });
  after(async () => {
    await system?.close();
    await sink?.close();
  });

  /** The engineer starts work on the manager's defect: the manager is mailed. Returns the status change's event id. */
  const statusChange = async (headers: Record<string, string> = {}) => {
    const defect = await system.api.post(
      '/v1/defects',
      { project_id: projectId, title: 'Протечка', assignee_id: engineer.id },
      manager.token,
    );
    const moved = await system.api.request('PATCH', `/v1/defects/${defect.body.id}`, {
      token: engineer.token,
      json: { status: 'В работе' },
      headers,
    });
    assert.equal(moved.status, 200);
    const event = await eventually(
      async () => {
        const page = await system.api.get(
          `/v1/events?event_type=defect.status_changed&defect_id=${defect.body.id}`,
          admin.token,
        );
        return page.body.items[0];
      },
      5_000,
      'the status change recorded',
    );
    return { eventId: event.event_id as string, requestId: moved.headers.get('x-request-id')! };
  };

  const notificationsStatus = async (eventId: string) => {
    const response = await system.api.get(`/v1/events/${eventId}`, admin.token);
    return response.body.deliveries?.find((delivery: any) => delivery.consumer === 'notifications.email');
  };

  it('when a consumer is retrying an event, then its status says so with the attempt, the next try and the error; then handled', async () => {
    sink.refuse(`${manager.username}@example.com`, 1, 451);
    const { eventId } = await statusChange();
    const retrying = await eventually(
      async () => {
        const status = await notificationsStatus(eventId);
        return status?.status === 'retrying' ? status : undefined;
      },
      5_000,
      'the retrying status',
    );
    assert.equal(retrying.attempt, 1);
    assert.match(retrying.last_error, /451/);
    assert.ok(new Date(retrying.next_attempt_at).getTime() > Date.now() - 500, 'the next try is ahead');
    const handled = await eventually(
      async () => {
        const status = await notificationsStatus(eventId);
        return status?.status === 'handled' ? status : undefined;
      },
      10_000,
      'handled after the retry',
    );
    assert.equal(handled.attempt, 2);
    assert.equal(handled.last_error, null);
  });

  it('when a consumer parks an event, then its status says parked with the reason, matching the dead-letter queue', async () => {
    sink.refuse(`${manager.username}@example.com`, 100, 451);
    const { eventId } = await statusChange();
    const parked = await eventually(
      async () => {
        const status = await notificationsStatus(eventId);
        return status?.status === 'parked' ? status : undefined;
      },
      15_000,
      'the parked status',
    );
    assert.equal(parked.reason, 'retries_exhausted');
    assert.equal(parked.attempt, 3);
    const deadLetters = await system.api.get('/v1/admin/dead-letters?consumer=notifications.email', admin.token);
    assert.ok(deadLetters.body.items.some((item: any) => item.id === eventId));
    sink.accept(`${manager.username}@example.com`);
  });

  it("a request's id and trace follow its events into the consumers' logs", async () => {
    const traceparent = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
    const { eventId, requestId } = await statusChange({ 'x-request-id': 'trace-me-42', traceparent });
    assert.equal(requestId, 'trace-me-42');
    const mailLine = await eventually(
      () =>
        system.logs.lines.find((line) => line.event_id === eventId && String(line.msg).startsWith('Отправка email')),
      10_000,
      "the notification consumer's log line",
    );
    assert.equal(mailLine.request_id, 'trace-me-42');
    assert.match(
      mailLine.traceparent,
      new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`),
      'the same trace, a span of the service',
    );
  });
});
