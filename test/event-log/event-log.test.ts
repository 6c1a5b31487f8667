import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestUser } from '../support/api-client.ts';
import { openEventStream } from '../support/sse-client.ts';
import { eventually, MODES, startTestSystem, type TestSystem } from '../support/test-system.ts';

for (const mode of MODES) {
  describe(`event log (${mode})`, () => {
    let system: TestSystem;
    let admin: TestUser;
    let manager: TestUser;
    let other: TestUser;
    let projectId: number;
    let defectId: number;
    let startedAt: string;

    before(async () => {
      system = await startTestSystem({ mode });
      admin = await system.api.createUser('admin');
      manager = await system.api.createUser('manager');
      other = await system.api.createUser('engineer');
      startedAt = new Date().toISOString();
      const { api } = system;
      projectId = (await api.post('/v1/projects', { name: 'Тестовый проект' }, manager.token)).body.id;
      await eventually(
        async () => (await api.get('/v1/events?event_type=project.*', manager.token)).body.total === 1,
        10_000,
        'the project event recorded',
      );
      defectId = (
        await api.post(
          '/v1/defects',
          { project_id: projectId, title: 'Критическая ошибка', priority: 'Высокий' },
          manager.token,
        )
      ).body.id;
      await api.put(
        `/v1/defects/${defectId}`,
        { title: 'Критическая ошибка', status: 'В работе', priority: 'Высокий' },
        manager.token,
      );
      // Two services' relays race: the next project's event must not overtake these in the log.
      await eventually(
        async () => (await api.get('/v1/events?event_type=defect.*', manager.token)).body.total === 3,
        10_000,
        'the defect events recorded',
      );
      await api.post('/v1/projects', { name: 'Чужой проект' }, other.token);
      await eventually(
        async () => (await api.get('/v1/events?event_type=project.*', admin.token)).body.total === 2,
        10_000,
        'the events recorded',
      );
    });
    after(async () => {
      await system?.close();
    });

    const list = async (query: string, token = manager.token) => {
      const response = await system.api.get(`/v1/events?${query}`, token);
      assert.equal(response.status, 200, JSON.stringify(response.body));
      return response.body;
    };

    it("lists the walkthrough's events newest first, each as the published envelope", async () => {
      const page = await list('limit=10');
      assert.deepEqual(
        page.items.map((event: any) => event.event_type),
        [
          'defect.updated',
          'defect.status_changed',
          'defect.created',
          'project.created',
          'user.role_changed',
          'user.registered',
        ],
        'not the project of which the manager is no member; user events about the manager only',
      );
      assert.deepEqual(Object.keys(page.items[0]), ['event_id', 'event_type', 'data', 'user_id', 'timestamp']);
      assert.deepEqual(
        Object.keys(page.items[2].data),
        ['defect_id', 'title', 'status', 'priority', 'project_id', 'reporter_id'],
        'fields in published order',
      );
      assert.equal(page.total, 6, "other users' events and other projects' events are not shown to non-members");
    });

    it('filters by event type and pattern, project, defect, user and time, and paginates', async () => {
      assert.deepEqual(
        (await list('event_type=defect.*')).items.map((e: any) => e.event_type),
        ['defect.updated', 'defect.status_changed', 'defect.created'],
      );
      assert.deepEqual(
        (await list('event_type=%23.created')).items.map((e: any) => e.event_type),
        ['defect.created', 'project.created'],
      );
      assert.equal((await list('event_type=defect.status_changed')).total, 1);
      assert.equal((await list(`project_id=${projectId}`)).total, 4, "the project and its defect's events");
      assert.equal((await list(`defect_id=${defectId}`)).total, 3);
      assert.equal((await list(`user_id=${other.id}`)).total, 0, "other's project: not the manager's");
      assert.equal((await list(`user_id=${other.id}&event_type=project.*`, admin.token)).total, 1);
      assert.equal((await list(`from=${encodeURIComponent(startedAt)}`)).total, 4);
      assert.equal((await list(`to=${encodeURIComponent(startedAt)}`)).total, 2, "the manager's own user events");
      const second = await list('limit=2&offset=2');
      assert.deepEqual(
        second.items.map((e: any) => e.event_type),
        ['defect.created', 'project.created'],
      );
      assert.equal(second.total, 6);
      const bad = await system.api.get('/v1/events?event_type=DROP TABLE', manager.token);
      assert.equal(bad.status, 422);
    });

    it('an admin also sees user events; nobody unauthenticated sees anything', async () => {
      assert.ok((await list('event_type=user.*', admin.token)).total >= 3);
      const own = await list('event_type=user.*');
      assert.deepEqual(
        own.items.map((event: any) => [event.event_type, event.data.user_id]),
        [
          ['user.role_changed', manager.id],
          ['user.registered', manager.id],
        ],
        'a user sees the user events about themselves only',
      );
      assert.equal((await system.api.get('/v1/events')).status, 401);
    });

    it('one event shows, to admins, where it stands at each consumer', async () => {
      const [created] = (await list('event_type=project.created&limit=1')).items;
      const detail = await eventually(
        async () => {
          const response = await system.api.get(`/v1/events/${created.event_id}`, admin.token);
          const consumers = (response.body.deliveries ?? []).map((d: any) => d.consumer).sort();
          return consumers.length === 4 ? response.body : undefined;
        },
        10_000,
        'four consumers reporting',
      );
      assert.deepEqual(detail.event, created);
      for (const delivery of detail.deliveries) {
        assert.equal(delivery.status, 'handled', delivery.consumer);
        assert.equal(delivery.attempt, 1);
      }
      assert.deepEqual(
        detail.deliveries.map((d: any) => d.consumer),
        ['auth.project-members', 'defects.project-directory', 'event-log.recorder', 'notifications.email'],
      );
      const asManager = await system.api.get(`/v1/events/${created.event_id}`, manager.token);
      assert.equal(asManager.status, 200);
      assert.equal(asManager.body.deliveries, undefined, 'delivery status is for admins');
      assert.equal((await system.api.get('/v1/events/00000000-0000-4000-8000-000000000000', admin.token)).status, 404);
      assert.equal((await system.api.get('/v1/events/not-a-uuid', admin.token)).status, 422);
    });

    it("a defect's history is its events, oldest first", async () => {
      const history = await system.api.get(`/v1/defects/${defectId}/history`, manager.token);
      assert.equal(history.status, 200);
      assert.deepEqual(
        history.body.items.map((e: any) => e.event_type),
        ['defect.created', 'defect.status_changed', 'defect.updated'],
      );
      assert.deepEqual(history.body.items[1].data, {
        defect_id: defectId,
        old_status: 'Новая',
        new_status: 'В работе',
        changed_by: manager.id,
      });
    });

    it('the stream delivers a new event within a second, and a reconnecting client resumes from Last-Event-ID without a gap', async () => {
      const headers = { authorization: `Bearer ${manager.token}` };
      const stream = await openEventStream(`${system.url}/v1/events/stream?event_type=defect.*`, headers);
      const sentAt = Date.now();
      await system.api.patch(`/v1/defects/${defectId}`, { priority: 'Критический' }, manager.token);
      const [first] = await stream.waitFor(1, 2_000);
      assert.ok(first.receivedAt - sentAt < 1_000, `arrived after ${first.receivedAt - sentAt} ms`);
      assert.equal(first.event, 'defect.updated');
      assert.equal(first.data.data.defect_id, defectId);
      stream.close();

      // Missed while disconnected: a status change (two events) and another project's event (filtered out).
      await system.api.patch(`/v1/defects/${defectId}`, { status: 'Решена' }, manager.token);
      await system.api.post('/v1/projects', { name: 'Не дефект' }, manager.token);
      await eventually(async () => (await list('event_type=defect.*')).total === 6, 5_000, 'recorded while away');

      const resumed = await openEventStream(`${system.url}/v1/events/stream?event_type=defect.*`, {
        ...headers,
        'last-event-id': first.id,
      });
      const caughtUp = await resumed.waitFor(2, 3_000);
      assert.deepEqual(
        caughtUp.map((m) => m.event),
        ['defect.status_changed', 'defect.updated'],
      );
      assert.ok(Number(caughtUp[0].id) > Number(first.id));
      await system.api.patch(`/v1/defects/${defectId}`, { title: 'Критическая ошибка, исправлена' }, manager.token);
      const [, , live] = await resumed.waitFor(3, 2_000);
      assert.equal(live.data.data.title, 'Критическая ошибка, исправлена');
      resumed.close();
    });
  });
}
