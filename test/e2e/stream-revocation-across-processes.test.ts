import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApiClient, type ApiClient, type TestUser } from '../support/api-client.ts';
import { deleteQueues } from '../support/broker.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL, TEST_POSTGRES_URL } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { openEventStream, type SseConnection } from '../support/sse-client.ts';
import { dropDatabase } from '../support/test-system.ts';

// Auth, projects and the event log, each its own process, sharing one PostgreSQL and one
// RabbitMQ. A revocation made in auth reaches the event log only through the `user.*`
// event its token-revocations consumer receives; the user's open streams must end within
// 2 seconds of the change, and nobody else's.
describe('revocation ends open event streams across processes', () => {
  const databaseUrl = `${TEST_POSTGRES_URL}/dc_stream_revocation_${process.pid}_${Date.now()}`;
  const processes: ServiceProcess[] = [];
  let dataDir: string;
  let auth: ApiClient;
  let projects: ApiClient;
  let eventLogUrl: string;

  before(async () => {
    await deleteQueues(SERVICE_QUEUES);
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'defect-control-stream-revocation-'));
    const common = { DATABASE_URL: databaseUrl, AMQP_URL: TEST_AMQP_URL, DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    const [authPort, projectsPort, eventLogPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const authProcess = await startProcess(
      'src/services/auth/main.ts',
      { ...common, ADMIN_USER: 'admin:admin-secret' },
      authPort,
    );
    processes.push(authProcess);
    const others = await Promise.all([
      startProcess('src/services/projects/main.ts', { ...common, AUTH_URL: authProcess.url }, projectsPort),
      startProcess('src/services/event-log/main.ts', { ...common, AUTH_URL: authProcess.url }, eventLogPort),
    ]);
    processes.push(...others);
    auth = createApiClient(authProcess.url);
    projects = createApiClient(others[0].url);
    eventLogUrl = others[1].url;
  });
  after(async () => {
    await Promise.all(processes.map((child) => child.stop()));
    await dropDatabase(databaseUrl);
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  const openStream = (token: string) =>
    openEventStream(`${eventLogUrl}/v1/events/stream`, { authorization: `Bearer ${token}` });

  /** True once the stream has ended, false if it is still open after `ms`. */
  const endsWithin = async (stream: SseConnection, ms: number): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(ms, 0))));
    try {
      return await Promise.race([stream.ended.then(() => true as const), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  };

  /**
   * The victim's open stream ends within 2 s of `change`, and the event log refuses the old
   * token; a bystander's stream, opened beside it, stays open and still receives an event
   * (a project the bystander creates) after the victim's has ended.
   */
  const assertStreamEndsWithin2s = async (victim: TestUser, change: () => Promise<void>) => {
    const bystander = await auth.createUser('engineer');
    const victimStream = await openStream(victim.token);
    const bystanderStream = await openStream(bystander.token);
    let bystanderEnded = false;
    void bystanderStream.ended.then(() => (bystanderEnded = true));
    try {
      assert.equal(await endsWithin(victimStream, 0), false, 'the stream is open before the change');
      const changedAt = Date.now();
      await change();
      assert.ok(
        await endsWithin(victimStream, 2_000 - (Date.now() - changedAt)),
        "the victim's stream ended within 2 s",
      );
      const refused = await fetch(`${eventLogUrl}/v1/events`, { headers: { authorization: `Bearer ${victim.token}` } });
      assert.equal(refused.status, 401, 'the event log refuses the old token');

      const project = await projects.post('/v1/projects', { name: 'Склад' }, bystander.token);
      assert.equal(project.status, 201, JSON.stringify(project.body));
      await waitForEvent(bystanderStream, 'project.created', project.body.id);
      assert.equal(bystanderEnded, false, "the bystander's stream is still open");
    } finally {
      victimStream.close();
      bystanderStream.close();
    }
  };

  it('when an admin demotes a user, then their open event stream ends within 2 s, and another user’s does not', async () => {
    const admin = await auth.login('admin', 'admin-secret');
    const victim = await auth.createUser('manager');
    await assertStreamEndsWithin2s(victim, async () => {
      const demoted = await auth.patch(`/v1/users/${victim.id}`, { role: 'observer' }, admin);
      assert.equal(demoted.status, 200, JSON.stringify(demoted.body));
    });
  });

  it('when an admin disables a user, then their open event stream ends within 2 s, and another user’s does not', async () => {
    const admin = await auth.login('admin', 'admin-secret');
    const victim = await auth.createUser('engineer');
    await assertStreamEndsWithin2s(victim, async () => {
      const disabled = await auth.patch(`/v1/users/${victim.id}`, { disabled: true }, admin);
      assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    });
  });

  it('when a user changes their password, then their open event stream ends within 2 s, and another user’s does not', async () => {
    const victim = await auth.createUser('engineer');
    await assertStreamEndsWithin2s(victim, async () => {
      const changed = await auth.request('POST', '/v1/users/me/password', {
        token: victim.token,
        json: { old_password: 'password-123', new_password: 'a-new-passphrase-42' },
      });
      assert.equal(changed.status, 204, JSON.stringify(changed.body));
    });
  });
});

/** Waits until the stream has delivered the event of `type` about project `projectId`. */
async function waitForEvent(stream: SseConnection, type: string, projectId: number, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  const found = () =>
    stream.messages.some((message) => message.event === type && message.data?.data?.project_id === projectId);
  while (!found()) {
    if (Date.now() > deadline)
      throw new Error(`no ${type} of project ${projectId} on the stream: ${JSON.stringify(stream.messages)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
