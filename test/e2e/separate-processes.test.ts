import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createApiClient } from '../support/api-client.ts';
import { bindTestQueue, deleteQueues, type TestQueue } from '../support/broker.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL, TEST_POSTGRES_URL } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { eventually } from '../support/test-system.ts';

// One process per service, two replicas of projects, all sharing one PostgreSQL and one RabbitMQ.
describe('one service per process, with replicas', () => {
  const databaseUrl = `${TEST_POSTGRES_URL}/dc_split_${process.pid}_${Date.now()}`;
  const processes: ServiceProcess[] = [];
  let queue: TestQueue;
  let dataDir: string;
  let gateway: ServiceProcess;
  let projectsReplicas: ServiceProcess[];

  before(async () => {
    await deleteQueues(SERVICE_QUEUES);
    queue = await bindTestQueue(['project.*', 'defect.*']);
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'defect-control-split-'));
    const common = { DATABASE_URL: databaseUrl, AMQP_URL: TEST_AMQP_URL, DATA_DIR: dataDir, LOG_LEVEL: 'info' };
    const [authPort, projectsPort1, projectsPort2, defectsPort, gatewayPort, eventLogPort] = await Promise.all(
      Array.from({ length: 6 }, () => freePort()),
    );
    const authUrl = `http://127.0.0.1:${authPort}`;
    const auth = await startProcess(
      'src/services/auth/main.ts',
      { ...common, DEMO_USER: 'testuser:123456', ADMIN_USER: 'admin:admin-secret' },
      authPort,
    );
    projectsReplicas = await Promise.all([
      startProcess('src/services/projects/main.ts', { ...common, AUTH_URL: authUrl }, projectsPort1),
      startProcess('src/services/projects/main.ts', { ...common, AUTH_URL: authUrl }, projectsPort2),
    ]);
    const defects = await startProcess(
      'src/services/defects/main.ts',
      { ...common, AUTH_URL: authUrl, PROJECTS_URL: projectsReplicas[0].url },
      defectsPort,
    );
    const eventLog = await startProcess(
      'src/services/event-log/main.ts',
      { ...common, AUTH_URL: authUrl },
      eventLogPort,
    );
    gateway = await startProcess(
      'src/services/gateway/main.ts',
      {
        LOG_LEVEL: 'info',
        AMQP_URL: TEST_AMQP_URL,
        AUTH_URL: authUrl,
        PROJECTS_URL: projectsReplicas[1].url,
        DEFECTS_URL: defects.url,
        EVENTS_URL: eventLog.url,
      },
      gatewayPort,
    );
    processes.push(auth, ...projectsReplicas, defects, eventLog, gateway);
  });
  after(async () => {
    await Promise.all(processes.map((child) => child.stop()));
    await queue?.close();
    const admin = new pg.Client({ connectionString: `${TEST_POSTGRES_URL}/postgres` });
    await admin.connect();
    await admin.query(
      `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(new URL(databaseUrl).pathname.slice(1))} WITH (FORCE)`,
    );
    await admin.end();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('when the seed walkthrough runs through the gateway, then it works as in the all-in-one process', async () => {
    const api = createApiClient(gateway.url);
    const token = await api.login('testuser', '123456');
    const project = await api.post('/v1/projects/', { name: 'Тестовый проект', description: 'Описание' }, token);
    assert.equal(project.status, 201);
    const defect = await api.post(
      '/v1/defects/',
      {
        title: 'Критическая ошибка',
        description: 'Описание ошибки',
        status: 'Новая',
        priority: 'Высокий',
        project_id: project.body.id,
      },
      token,
    );
    assert.equal(defect.status, 201, JSON.stringify(defect.body));
    const moved = await api.put(
      `/v1/defects/${defect.body.id}`,
      {
        title: 'Критическая ошибка',
        description: 'Описание ошибки',
        status: 'В работе',
        priority: 'Высокий',
      },
      token,
    );
    assert.equal(moved.status, 200);
    assert.ok(moved.headers.get('x-request-id'));
    const ready = await api.get('/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(
      ready.body.checks.map((check: any) => check.name),
      ['auth', 'projects', 'defects', 'events'],
    );
    await queue.waitFor(4);

    // The event log, in its own process, behind the same gateway.
    const history = await eventually(
      async () => {
        const response = await api.get(`/v1/defects/${defect.body.id}/history`, token);
        return response.status === 200 && response.body.total === 3 ? response.body : undefined;
      },
      10_000,
      'the defect history',
    );
    assert.deepEqual(
      history.items.map((event: any) => event.event_type),
      ['defect.created', 'defect.status_changed', 'defect.updated'],
    );
    const recent = await api.get('/v1/events?event_type=project.*', token);
    assert.equal(recent.status, 200);
    assert.equal(recent.body.items[0].event_type, 'project.created');
  });

  it('when a member is added or removed, then the defects process learns it from the event; before the event, the projects service answers for it', async () => {
    const api = createApiClient(gateway.url);
    const token = await api.login('testuser', '123456');
    const engineer = await api.createUser('engineer');
    const project = (await api.post('/v1/projects', { name: 'Эстакада' }, token)).body;
    // The projects service knows the new user once its user.registered has arrived.
    await eventually(
      async () =>
        (await api.post(`/v1/projects/${project.id}/members`, { user_id: engineer.id }, token)).status === 201,
      10_000,
      'the projects service to know the new user',
    );
    const db = new pg.Pool({ connectionString: databaseUrl, max: 1 });
    const membership = async () =>
      (
        await db.query('SELECT is_member FROM defects.project_members WHERE project_id = $1 AND user_id = $2', [
          project.id,
          engineer.id,
        ])
      ).rows[0]?.is_member as boolean | undefined;
    try {
      await eventually(async () => (await membership()) === true, 10_000, 'defects to hear of project.member_added');

      // As if the event had not arrived: the defects process asks the projects process, with the caller's token.
      await db.query('DELETE FROM defects.project_members WHERE project_id = $1 AND user_id = $2', [
        project.id,
        engineer.id,
      ]);
      const defect = await api.post('/v1/defects', { project_id: project.id, title: 'Шов' }, engineer.token);
      assert.equal(defect.status, 201, JSON.stringify(defect.body));

      assert.equal((await api.delete(`/v1/projects/${project.id}/members/${engineer.id}`, token)).status, 204);
      await eventually(async () => (await membership()) === false, 10_000, 'defects to hear of project.member_removed');
      assert.equal((await api.get(`/v1/defects/${defect.body.id}`, engineer.token)).status, 404);
      assert.equal((await api.get(`/v1/defects/${defect.body.id}`, token)).status, 200, 'the defect stays');
    } finally {
      await db.end();
    }
  });

  it('when writes alternate between two replicas of one service, then each event is published once and in commit order', async () => {
    const token = await createApiClient(gateway.url).login('testuser', '123456');
    const before = queue.messages.length;
    const createdIds: number[] = [];
    for (let i = 0; i < 30; i += 1) {
      const replica = createApiClient(projectsReplicas[i % 2].url);
      const response = await replica.post('/v1/projects', { name: `Объект ${i}` }, token);
      assert.equal(response.status, 201);
      createdIds.push(response.body.id);
    }
    await queue.waitFor(before + 30, 15_000);
    // Both replicas' relays share the outbox: once it is empty neither has anything left to
    // publish (again), and a marker shows that everything published has arrived.
    const db = new pg.Pool({ connectionString: databaseUrl, max: 1 });
    try {
      await queue.settle(db);
    } finally {
      await db.end();
    }
    const published = queue.messages.slice(before).map((message) => message.body.data.project_id);
    assert.deepEqual(published, createdIds);
    const appIds = new Set(queue.messages.slice(before).map((message) => message.appId));
    assert.deepEqual([...appIds], ['projects']);
  });

  it('the gateway serves the dead-letter admin API over RabbitMQ, to admins only', async () => {
    const api = createApiClient(gateway.url);
    const admin = await api.login('admin', 'admin-secret');
    const listed = await api.get('/v1/admin/dead-letters', admin);
    assert.equal(listed.status, 200);
    assert.ok(Array.isArray(listed.body.items));
    assert.equal((await api.get('/v1/admin/dead-letters', await api.login('testuser', '123456'))).status, 403);
  });

  it('the gateway serves one OpenAPI document for all services', async () => {
    const response = await fetch(`${gateway.url}/docs/json`);
    assert.equal(response.status, 200);
    const document = (await response.json()) as { paths: Record<string, unknown> };
    for (const route of ['/v1/auth/token', '/v1/projects/', '/v1/defects/{id}']) {
      assert.ok(
        Object.keys(document.paths).some((key) => key.replace(/\/$/, '') === route.replace(/\/$/, '')),
        route,
      );
    }
  });
});
