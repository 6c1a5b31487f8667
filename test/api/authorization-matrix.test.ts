import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiClient, ApiResponse, TestUser } from '../support/api-client.ts';
import { bindTestQueue, withBroker, type TestQueue } from '../support/broker.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

// Every route (projects, members, defects, users and sign-in, the event log, dead letters),
// called by each kind of caller: the status it answers, and for a refusal, that nothing
// changed and no event was published (the test queue bound to `#` is settled: outboxes
// empty, a marker back, before counting). A row of ROUTES is one route.

const CALLERS = ['admin', 'owner', 'member', 'member-observer', 'non-member', 'anonymous'] as const;
type Caller = (typeof CALLERS)[number];

/** A project of `owner` with `member` and `member-observer` as members, and a defect reported by `member`. */
interface Fixture {
  projectId: number;
  defectId: number;
  /** The defect's `defect.created`, as the event log recorded it. */
  eventId: string;
  /** A message parked at one consumer's dead-letter queue (the same one for every row). */
  parkedId: string;
  /** A fresh user for the rows that revoke its tokens (role, disable): nobody else's token ends. */
  target?: TestUser;
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
  check?(response: ApiResponse, caller: Caller, fixture: Fixture, users: Users, api: ApiClient): void | Promise<void>;
  /** The row needs `fixture.target`. */
  withTarget?: true;
  /** The row reads the event log: members wait until it knows their membership of the new project. */
  readsEvents?: true;
  /** Puts back what a successful call took from the caller (a password change ends their token). */
  restore?(api: ApiClient, user: TestUser): Promise<void>;
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

/** Admins only: anyone else signed in is forbidden (the route says so, it hides nothing). */
const adminOnly = (status: number) => all(403, { admin: status });

const ids = (response: ApiResponse) => (response.body.items as Array<{ id: number }>).map((item) => item.id);
const eventIds = (response: ApiResponse) =>
  (response.body.items as Array<{ event_id: string }>).map((item) => item.event_id);
const eventProjects = (response: ApiResponse) =>
  (response.body.items as Array<{ data: { project_id?: number } }>).map((item) => item.data.project_id);
const sees = (caller: Caller) => caller !== 'non-member';

const PASSWORD = 'password-123';
const NEW_PASSWORD = 'a-new-passphrase-42';
const PARKED_AT = 'defects.project-directory';
/** A consumer with nothing parked: what the admin's replay-all and purge-all rows act on. */
const EMPTY_CONSUMER = 'notifications.token-revocations';

/**
 * The head of an event stream: its status, then the connection is closed (a 200 never ends
 * by itself); a refusal's JSON body is read as any other.
 */
async function streamHead(api: ApiClient, path: string, token: string | undefined): Promise<ApiResponse> {
  const controller = new AbortController();
  const response = await fetch(`${api.baseUrl}${path}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: controller.signal,
  });
  if (response.status === 200) {
    controller.abort();
    return { status: 200, body: undefined, headers: response.headers };
  }
  return { status: response.status, body: await response.json(), headers: response.headers };
}

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
    check: (response, caller, _f, users) => assert.equal(response.body.id, userOf(users, caller).id),
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
    route: 'PATCH /v1/users/{id} role',
    call: (api, f, _u, token) => api.patch(`/v1/users/${f.target!.id}`, { role: 'manager' }, token),
    expect: adminOnly(200),
    withTarget: true,
    check: async (response, _caller, f, _u, api) => {
      assert.equal(response.body.role, 'manager');
      assert.equal((await api.get('/v1/users/me', f.target!.token)).status, 401, 'the old token ended');
    },
  },
  {
    route: 'PATCH /v1/users/{id} disabled',
    call: (api, f, _u, token) => api.patch(`/v1/users/${f.target!.id}`, { disabled: true }, token),
    expect: adminOnly(200),
    withTarget: true,
    check: async (response, _caller, f, _u, api) => {
      assert.equal(response.body.disabled, true);
      assert.equal((await api.get('/v1/users/me', f.target!.token)).status, 401, 'the old token ended');
      const signIn = await api.request('POST', '/v1/auth/token', {
        form: { username: f.target!.username, password: PASSWORD },
      });
      assert.equal(signIn.status, 401, 'a disabled user cannot sign in');
    },
  },
  {
    route: 'POST /v1/users/me/password',
    call: (api, _f, _u, token) =>
      api.request('POST', '/v1/users/me/password', {
        token,
        json: { old_password: PASSWORD, new_password: NEW_PASSWORD },
      }),
    expect: all(204),
    check: async (_response, caller, _f, users, api) =>
      assert.equal((await api.get('/v1/users/me', userOf(users, caller).token)).status, 401, 'the old token ended'),
    // The rows after this one use the caller's token: the old password back, a new token.
    restore: async (api, user) => {
      const changedBack = await api.request('POST', '/v1/users/me/password', {
        token: await api.login(user.username, NEW_PASSWORD),
        json: { old_password: NEW_PASSWORD, new_password: PASSWORD },
      });
      assert.equal(changedBack.status, 204, JSON.stringify(changedBack.body));
      user.token = await api.login(user.username, PASSWORD);
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
    route: 'GET /v1/events',
    call: (api, _f, _u, token) => api.get('/v1/events?limit=200', token),
    expect: all(200),
    readsEvents: true,
    check: (response, caller, f) => {
      assert.equal(eventIds(response).includes(f.eventId), sees(caller), caller);
      if (!sees(caller))
        assert.ok(!eventProjects(response).includes(f.projectId), `${caller}: no event of the project`);
    },
  },
  {
    route: 'GET /v1/events?project_id=',
    call: (api, f, _u, token) => api.get(`/v1/events?project_id=${f.projectId}&limit=200`, token),
    expect: all(200),
    readsEvents: true,
    check: (response, caller, f) => {
      if (sees(caller)) assert.ok(eventIds(response).includes(f.eventId), caller);
      else assert.deepEqual(response.body.items, [], `${caller}: an empty page (decision 010)`);
    },
  },
  {
    route: 'GET /v1/events/{event_id}',
    call: (api, f, _u, token) => api.get(`/v1/events/${f.eventId}`, token),
    expect: membersRead,
    readsEvents: true,
    check: (response, caller, f) => {
      assert.equal(response.body.event.event_id, f.eventId);
      assert.equal('deliveries' in response.body, caller === 'admin', `${caller} sees the deliveries`);
    },
  },
  {
    route: 'GET /v1/defects/{id}/history',
    call: (api, f, _u, token) => api.get(`/v1/defects/${f.defectId}/history`, token),
    // Not a 404 for a non-member: an empty page, as for a defect that does not exist (decision 010).
    expect: all(200),
    readsEvents: true,
    check: (response, caller, f) => {
      if (sees(caller)) assert.ok(eventIds(response).includes(f.eventId), caller);
      else
        assert.deepEqual({ items: response.body.items, total: response.body.total }, { items: [], total: 0 }, caller);
    },
  },
  {
    route: 'GET /v1/events/stream',
    call: (api, _f, _u, token) => streamHead(api, '/v1/events/stream', token),
    expect: all(200),
  },
  {
    route: 'GET /v1/admin/dead-letters',
    call: (api, _f, _u, token) => api.get(`/v1/admin/dead-letters?consumer=${PARKED_AT}`, token),
    expect: adminOnly(200),
    check: (response, _caller, f) =>
      assert.ok((response.body.items as Array<{ id: string }>).some((item) => item.id === f.parkedId)),
  },
  {
    route: 'GET /v1/admin/dead-letters/{id}',
    call: (api, f, _u, token) => api.get(`/v1/admin/dead-letters/${encodeURIComponent(f.parkedId)}`, token),
    expect: adminOnly(200),
    check: (response, _caller, f) => assert.equal(response.body.id, f.parkedId),
  },
  {
    route: 'POST /v1/admin/dead-letters/replay',
    call: (api, _f, _u, token) =>
      api.request('POST', `/v1/admin/dead-letters/replay?consumer=${EMPTY_CONSUMER}`, { token }),
    expect: adminOnly(200),
    check: (response) => assert.deepEqual(response.body, { replayed: 0 }),
  },
  {
    // The admin's answer for an id that is not parked; anyone else is refused before the lookup.
    route: 'POST /v1/admin/dead-letters/{id}/replay',
    call: (api, _f, _u, token) => api.request('POST', '/v1/admin/dead-letters/no-such-id/replay', { token }),
    expect: adminOnly(404),
  },
  {
    route: 'DELETE /v1/admin/dead-letters',
    call: (api, _f, _u, token) => api.delete(`/v1/admin/dead-letters?consumer=${EMPTY_CONSUMER}`, token),
    expect: adminOnly(200),
    check: (response) => assert.deepEqual(response.body, { purged: 0 }),
  },
  {
    route: 'DELETE /v1/admin/dead-letters/{id}',
    call: (api, _f, _u, token) => api.delete('/v1/admin/dead-letters/no-such-id', token),
    expect: adminOnly(404),
  },
];

const USER_OF: Record<Exclude<Caller, 'anonymous'>, keyof Users> = {
  admin: 'admin',
  owner: 'owner',
  member: 'member',
  'member-observer': 'memberObserver',
  'non-member': 'nonMember',
};
const userOf = (users: Users, caller: Caller): TestUser => {
  if (caller === 'anonymous') throw new Error('anonymous is no user');
  return users[USER_OF[caller]];
};

/** Parks one message at a consumer's dead-letter queue: not JSON, sent to that queue alone. */
async function parkGarbage(api: ApiClient, adminToken: string): Promise<string> {
  await withBroker(async (connection) => {
    const publisher = connection.createPublisher({ confirm: true });
    await publisher.send({ exchange: '', routingKey: PARKED_AT, durable: true }, Buffer.from('not an event'));
    await publisher.close();
  });
  return eventually(
    async () => (await api.get(`/v1/admin/dead-letters?consumer=${PARKED_AT}`, adminToken)).body.items[0]?.id as string,
    10_000,
    'the garbage to be parked',
  );
}

describe('authorization matrix (postgres)', () => {
  let system: TestSystem;
  let api: ApiClient;
  let queue: TestQueue;
  let users: Users;

  let parkedId: string;

  const tokenOf = (caller: Caller): string | undefined =>
    caller === 'anonymous' ? undefined : userOf(users, caller).token;

  const ok = (response: ApiResponse, status: number) => {
    assert.equal(response.status, status, JSON.stringify(response.body));
    return response.body;
  };

  const createFixture = async (route?: RouteCase): Promise<Fixture> => {
    const project = ok(await api.post('/v1/projects', { name: 'Мост', description: 'Опоры' }, users.owner.token), 201);
    for (const user of [users.member, users.memberObserver])
      ok(await api.post(`/v1/projects/${project.id}/members`, { user_id: user.id }, users.owner.token), 201);
    const defect = ok(
      await api.post('/v1/defects', { project_id: project.id, title: 'Трещина в опоре' }, users.member.token),
      201,
    );
    const eventId = await eventually(
      async () =>
        (await api.get(`/v1/events?defect_id=${defect.id}&event_type=defect.created`, users.admin.token)).body.items[0]
          ?.event_id as string,
      10_000,
      'the event log to record the defect',
    );
    const target = route?.withTarget ? await api.createUser('engineer') : undefined;
    return { projectId: project.id, defectId: defect.id, eventId, parkedId, target };
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
      target: f.target && (await read(`/v1/users/${f.target.id}`)),
      // Still signed in: a refused role change or disable did not end the token.
      targetSignedIn: f.target && (await api.get('/v1/users/me', f.target.token)).status,
      parked: (await read(`/v1/admin/dead-letters?consumer=${PARKED_AT}`)).body,
      emptyConsumer: (await read(`/v1/admin/dead-letters?consumer=${EMPTY_CONSUMER}`)).body.total,
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
    parkedId = await parkGarbage(api, admin.token);
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
        const fixture = await createFixture(route);
        const member = ['owner', 'member', 'member-observer'].includes(caller);
        if (route.route.startsWith('GET /v1/users') && member)
          await eventually(
            async () => (await api.get(`/v1/users/${users.owner.id}`, tokenOf(caller))).status === 200,
            10_000,
            'the auth service to hear of the new project',
          );
        // The event log's copy of membership follows the events (decision 010: a new member
        // may get 404 for a moment). A member who never gets to see the event fails here.
        if (route.readsEvents && member)
          await eventually(
            async () => (await api.get(`/v1/events/${fixture.eventId}`, tokenOf(caller))).status === 200,
            10_000,
            'the event log to hear of the membership',
          );
        await queue.settle(system.host.db);
        const published = queue.messages.length;
        const before = expected >= 400 ? await snapshot(fixture) : undefined;

        const response = await route.call(api, fixture, users, tokenOf(caller));
        try {
          assert.equal(response.status, expected, `${route.route} by ${caller}: ${JSON.stringify(response.body)}`);
          if (expected < 400) await route.check?.(response, caller, fixture, users, api);
        } finally {
          if (route.restore && response.status < 400) await route.restore(api, userOf(users, caller));
        }
        if (expected < 400) return;
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
