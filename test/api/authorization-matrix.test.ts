import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiClient, ApiResponse, TestUser } from '../support/api-client.ts';
import { bindTestQueue, type TestQueue } from '../support/broker.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

// Every projects, members, defects and users route, called by each kind of caller: the
// status it answers, and for a refusal, that nothing changed and no event was published
// (the test queue bound to `#` is settled: outboxes empty, a marker back, before counting).
// A row of ROUTES is one route; a later route (the event log's, say) is one more row.

const CALLERS = ['admin', 'owner', 'member', 'member-observer', 'non-member', 'anonymous'] as const;
type Caller = (typeof CALLERS)[number];

/** A project of `owner` with `member` and `member-observer` as members, and a defect reported by `member`. */
interface Fixture {
  projectId: number;
  defectId: number;
}

interface Users {
  admin: TestUser;
  owner: TestUser;
  member: TestUser;
  memberObserver: TestUser;
  nonMember: TestUser;
  /** A user nobody has made a member yet: the one members routes add. */
  newcomer: TestUser;
}

interface RouteCase {
  route: string;
  call(api: ApiClient, fixture: Fixture, users: Users, token: string | undefined): Promise<ApiResponse>;
  expect: Record<Caller, number>;
  /** More checks of a successful answer (what a list shows to whom). */
  check?(response: ApiResponse, caller: Caller, fixture: Fixture, users: Users): void;
}

const all = (status: number, overrides: Partial<Record<Caller, number>> = {}): Record<Caller, number> => ({
  admin: status,
  owner: status,
  member: status,
  'member-observer': status,
  'non-member': status,
  anonymous: 401,
  ...overrides,
});
/** Members read; anyone else is told there is no such thing. */
const membersRead = all(200, { 'non-member': 404 });
/** The owner and admins change; other members are refused; non-members are told there is nothing. */
const ownerChanges = (status: number) => all(status, { member: 403, 'member-observer': 403, 'non-member': 404 });

const ids = (response: ApiResponse) => (response.body.items as Array<{ id: number }>).map((item) => item.id);
const sees = (caller: Caller) => caller !== 'non-member';

const ROUTES: RouteCase[] = [
  {
    route: 'POST /v1/projects',
    call: (api, _f, _u, token) => api.post('/v1/projects', { name: 'Новый объект' }, token),
    expect: all(201, { 'member-observer': 403 }),
  },
  {
    route: 'GET /v1/projects',
    call: (api, _f, _u, token) => api.get('/v1/projects?limit=200', token),
    expect: all(200),
    check: (response, caller, f) => assert.equal(ids(response).includes(f.projectId), sees(caller), caller),
  },
  {
    route: 'GET /v1/projects/{id}',
    call: (api, f, _u, token) => api.get(`/v1/projects/${f.projectId}`, token),
    expect: membersRead,
  },
  {
    route: 'PUT /v1/projects/{id}',
    call: (api, f, _u, token) => api.put(`/v1/projects/${f.projectId}`, { name: 'Переименован' }, token),
    expect: ownerChanges(200),
  },
  {
    route: 'PATCH /v1/projects/{id}',
    call: (api, f, _u, token) => api.patch(`/v1/projects/${f.projectId}`, { description: 'Другое' }, token),
    expect: ownerChanges(200),
  },
  {
    route: 'DELETE /v1/projects/{id}',
    call: (api, f, _u, token) => api.delete(`/v1/projects/${f.projectId}`, token),
    expect: ownerChanges(204),
  },
  {
    route: 'GET /v1/projects/{id}/members',
    call: (api, f, _u, token) => api.get(`/v1/projects/${f.projectId}/members`, token),
    expect: membersRead,
    check: (response, _caller, _f, users) =>
      assert.deepEqual(
        (response.body.items as Array<{ user_id: number }>).map((member) => member.user_id),
        [users.owner.id, users.member.id, users.memberObserver.id].sort((a, b) => a - b),
      ),
  },
  {
    route: 'GET /v1/projects/{id}/members/{user_id}',
    call: (api, f, users, token) => api.get(`/v1/projects/${f.projectId}/members/${users.member.id}`, token),
    expect: membersRead,
  },
  {
    route: 'POST /v1/projects/{id}/members',
    call: (api, f, users, token) =>
      api.post(`/v1/projects/${f.projectId}/members`, { user_id: users.newcomer.id }, token),
    expect: ownerChanges(201),
  },
  {
    route: 'DELETE /v1/projects/{id}/members/{user_id}',
    call: (api, f, users, token) => api.delete(`/v1/projects/${f.projectId}/members/${users.member.id}`, token),
    expect: ownerChanges(204),
  },
  {
    route: 'DELETE /v1/projects/{id}/members/{owner}',
    call: (api, f, users, token) => api.delete(`/v1/projects/${f.projectId}/members/${users.owner.id}`, token),
    expect: ownerChanges(409),
  },
  {
    route: 'POST /v1/defects',
    call: (api, f, _u, token) => api.post('/v1/defects', { project_id: f.projectId, title: 'Скол плиты' }, token),
    expect: all(201, { 'member-observer': 403, 'non-member': 404 }),
  },
  {
    route: 'GET /v1/defects',
    call: (api, _f, _u, token) => api.get('/v1/defects?limit=200', token),
    expect: all(200),
    check: (response, caller, f) => assert.equal(ids(response).includes(f.defectId), sees(caller), caller),
  },
  {
    route: 'GET /v1/defects?project_id=',
    call: (api, f, _u, token) => api.get(`/v1/defects?project_id=${f.projectId}`, token),
    expect: all(200),
    check: (response, caller, f) => assert.deepEqual(ids(response), sees(caller) ? [f.defectId] : [], caller),
  },
  {
    route: 'GET /v1/defects/{id}',
    call: (api, f, _u, token) => api.get(`/v1/defects/${f.defectId}`, token),
    expect: membersRead,
  },
  {
    route: 'PUT /v1/defects/{id}',
    call: (api, f, _u, token) =>
      api.put(`/v1/defects/${f.defectId}`, { title: 'Уточнено', status: 'В работе', priority: 'Низкий' }, token),
    // member: the defect's reporter.
    expect: all(200, { 'member-observer': 403, 'non-member': 404 }),
  },
  {
    route: 'PATCH /v1/defects/{id}',
    call: (api, f, _u, token) => api.patch(`/v1/defects/${f.defectId}`, { priority: 'Критический' }, token),
    expect: all(200, { 'member-observer': 403, 'non-member': 404 }),
  },
  {
    route: 'DELETE /v1/defects/{id}',
    call: (api, f, _u, token) => api.delete(`/v1/defects/${f.defectId}`, token),
    // member: the reporter, not the project's owner.
    expect: ownerChanges(204),
  },
  {
    route: 'GET /v1/users/me',
    call: (api, _f, _u, token) => api.get('/v1/users/me', token),
    expect: all(200),
  },
  {
    route: 'GET /v1/users',
    call: (api, _f, _u, token) => api.get('/v1/users?limit=200', token),
    expect: all(200),
    check: (response, caller, _f, users) => {
      const owner = (response.body.items as Array<Record<string, unknown>>).find((user) => user.id === users.owner.id);
      assert.equal(owner !== undefined, sees(caller), `${caller} sees the owner`);
      if (caller === 'admin') assert.equal(typeof owner?.email, 'string');
      else if (owner) assert.deepEqual(Object.keys(owner).sort(), ['full_name', 'id', 'username'], caller);
    },
  },
  {
    route: 'GET /v1/users/{id}',
    call: (api, _f, users, token) => api.get(`/v1/users/${users.owner.id}`, token),
    expect: membersRead,
    check: (response, caller) =>
      assert.equal('email' in response.body, caller === 'admin' || caller === 'owner', `${caller} sees the e-mail`),
  },
  {
    route: 'PATCH /v1/users/{id}',
    call: (api, _f, users, token) => api.patch(`/v1/users/${users.newcomer.id}`, { role: 'engineer' }, token),
    expect: all(403, { admin: 200 }),
  },
];

describe('authorization matrix (postgres)', () => {
  let system: TestSystem;
  let api: ApiClient;
  let queue: TestQueue;
  let users: Users;

  const tokenOf = (caller: Caller): string | undefined =>
    ({
      admin: users.admin.token,
      owner: users.owner.token,
      member: users.member.token,
      'member-observer': users.memberObserver.token,
      'non-member': users.nonMember.token,
      anonymous: undefined,
    })[caller];

  const ok = (response: ApiResponse, status: number) => {
    assert.equal(response.status, status, JSON.stringify(response.body));
    return response.body;
  };

  const createFixture = async (): Promise<Fixture> => {
    const project = ok(await api.post('/v1/projects', { name: 'Мост', description: 'Опоры' }, users.owner.token), 201);
    for (const user of [users.member, users.memberObserver])
      ok(await api.post(`/v1/projects/${project.id}/members`, { user_id: user.id }, users.owner.token), 201);
    const defect = ok(
      await api.post('/v1/defects', { project_id: project.id, title: 'Трещина в опоре' }, users.member.token),
      201,
    );
    return { projectId: project.id, defectId: defect.id };
  };

  /** What a refused request must leave as it was, read by the admin. */
  const snapshot = async (f: Fixture) => {
    const read = async (path: string) => {
      const response = await api.get(path, users.admin.token);
      return { status: response.status, body: response.body };
    };
    return {
      project: await read(`/v1/projects/${f.projectId}`),
      members: await read(`/v1/projects/${f.projectId}/members`),
      defects: await read(`/v1/defects?project_id=${f.projectId}`),
      projectCount: (await read('/v1/projects?limit=1')).body.total,
      defectCount: (await read('/v1/defects?limit=1')).body.total,
      newcomer: await read(`/v1/users/${users.newcomer.id}`),
    };
  };

  before(async () => {
    system = await startTestSystem({ mode: 'postgres' });
    api = system.api;
    queue = await bindTestQueue(['#']);
    const [admin, owner, member, memberObserver, nonMember, newcomer] = await Promise.all([
      api.createUser('admin'),
      api.createUser('engineer'),
      api.createUser('engineer'),
      api.createUser('observer'),
      api.createUser('engineer'),
      api.createUser('engineer'),
    ]);
    users = { admin, owner, member, memberObserver, nonMember, newcomer };
    // The users routes read the auth service's copy of memberships: wait until it has them.
    await createFixture();
    await eventually(
      async () => (await api.get(`/v1/users/${owner.id}`, memberObserver.token)).status === 200,
      10_000,
      'the auth service to hear of the memberships',
    );
  });
  after(async () => {
    await queue?.close();
    await system?.close();
  });

  for (const route of ROUTES) {
    for (const caller of CALLERS) {
      const expected = route.expect[caller];
      it(`${route.route} by ${caller}: ${expected}`, async () => {
        const fixture = await createFixture();
        if (route.route.startsWith('GET /v1/users') && ['owner', 'member', 'member-observer'].includes(caller))
          await eventually(
            async () => (await api.get(`/v1/users/${users.owner.id}`, tokenOf(caller))).status === 200,
            10_000,
            'the auth service to hear of the new project',
          );
        await queue.settle(system.host.db);
        const published = queue.messages.length;
        const before = expected >= 400 ? await snapshot(fixture) : undefined;

        const response = await route.call(api, fixture, users, tokenOf(caller));

        assert.equal(response.status, expected, `${route.route} by ${caller}: ${JSON.stringify(response.body)}`);
        if (expected < 400) {
          route.check?.(response, caller, fixture, users);
          return;
        }
        assert.equal(typeof response.body.detail, 'string');
        await queue.settle(system.host.db);
        assert.deepEqual(
          queue.messages.slice(published).map((message) => message.routingKey),
          [],
          'a refused request publishes nothing',
        );
        assert.deepEqual(await snapshot(fixture), before, 'a refused request changes nothing');
      });
    }
  }
});
