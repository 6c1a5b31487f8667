import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiClient, ApiResponse, TestUser } from '../support/api-client.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

// Who may do what: observers read, engineers and managers report, owners and admins
// change projects, the parties of a defect change it, owners and admins delete defects,
// admins change roles. Every refusal leaves the data exactly as it was. Since issue 11 only a
// project's members see it: the users acting on a project here are made its members first
// (what non-members get is test/api/authorization-matrix.test.ts's).

function assertStatus(response: ApiResponse, status: number) {
  assert.equal(response.status, status, `${response.status} ${JSON.stringify(response.body)}`);
}

function assertForbidden(response: ApiResponse) {
  assertStatus(response, 403);
  assert.equal(typeof response.body.detail, 'string');
  assert.notEqual(response.body.detail.trim(), '');
}

describe('roles and permissions (postgres)', () => {
  let system: TestSystem;
  let api: ApiClient;
  let admin: TestUser;
  let manager: TestUser;
  let owner: TestUser;
  let reporter: TestUser;
  let assignee: TestUser;
  let outsider: TestUser;
  let observer: TestUser;

  const createProject = async (user: TestUser, name = 'Жилой дом') => {
    const response = await api.post('/v1/projects', { name, description: 'Секция А' }, user.token);
    assertStatus(response, 201);
    return response.body;
  };

  const reportDefect = async (user: TestUser, projectId: number, fields: Record<string, unknown> = {}) => {
    const response = await api.post(
      '/v1/defects',
      { project_id: projectId, title: 'Протечка кровли', priority: 'Высокий', ...fields },
      user.token,
    );
    assertStatus(response, 201);
    return response.body;
  };

  /** `owner` makes the users members of its project. */
  const addMembers = (projectId: number, ...users: TestUser[]) => api.addMembers(projectId, owner.token, ...users);

  /** A project of `owner` with a defect reported by `reporter` and assigned to `assignee` (members). */
  const ownedDefect = async () => {
    const project = await createProject(owner);
    await addMembers(project.id, reporter, assignee);
    const defect = await reportDefect(reporter, project.id, { assignee_id: assignee.id });
    return { project, defect };
  };

  /** The item reads back exactly as it was (nothing changed, not even updated_at). */
  const assertUnchanged = async (path: string, expected: unknown) => {
    const response = await api.get(path, admin.token);
    assertStatus(response, 200);
    assert.deepEqual(response.body, expected);
  };

  const total = async (path: string) => (await api.get(path, admin.token)).body.total as number;

  before(async () => {
    system = await startTestSystem({ mode: 'postgres' });
    api = system.api;
    [admin, manager, owner, reporter, assignee, outsider, observer] = await Promise.all([
      api.createUser('admin'),
      api.createUser('manager'),
      api.createUser('engineer'),
      api.createUser('engineer'),
      api.createUser('engineer'),
      api.createUser('engineer'),
      api.createUser('observer'),
    ]);
  });
  after(async () => {
    await system?.close();
  });

  describe('accounts', () => {
    it('a newly registered user is an engineer, in the response, at /v1/users/me and in the token', async () => {
      const registered = await api.post('/v1/auth/register', {
        username: 'fresh_engineer',
        password: 'password-123',
        email: 'fresh@example.com',
      });
      assertStatus(registered, 201);
      assert.equal(registered.body.role, 'engineer');
      const token = await api.login('fresh_engineer', 'password-123');
      const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
      assert.equal(claims.role, 'engineer');
      assert.equal(claims.sub, String(registered.body.id));
      const me = await api.get('/v1/users/me', token);
      assertStatus(me, 200);
      assert.equal(me.body.role, 'engineer');
    });

    it('GET /v1/users/me returns the caller, whatever the role', async () => {
      for (const user of [admin, manager, owner, observer]) {
        const me = await api.get('/v1/users/me', user.token);
        assertStatus(me, 200);
        assert.deepEqual(
          { id: me.body.id, username: me.body.username, role: me.body.role },
          { id: user.id, username: user.username, role: user.role },
        );
        assert.equal(me.body.password_hash, undefined);
      }
    });

    it("an admin changes a user's role, and the next token carries it: a demoted owner only reads", async () => {
      const user = await api.createUser('engineer');
      const project = await createProject(user, 'До понижения');
      const changed = await api.patch(`/v1/users/${user.id}`, { role: 'observer' }, admin.token);
      assertStatus(changed, 200);
      assert.equal(changed.body.role, 'observer');
      assert.equal((await api.get(`/v1/users/${user.id}`, admin.token)).body.role, 'observer');

      const token = await api.login(user.username, 'password-123');
      assert.equal((await api.get('/v1/users/me', token)).body.role, 'observer');
      assertForbidden(await api.post('/v1/projects', { name: 'Теперь нельзя' }, token));
      assertForbidden(await api.patch(`/v1/projects/${project.id}`, { name: 'Своё, но нельзя' }, token));
      assertForbidden(await api.delete(`/v1/projects/${project.id}`, token));
      await assertUnchanged(`/v1/projects/${project.id}`, project);
    });

    it('when a manager, an engineer or an observer changes a role, then 403 and the role stays', async () => {
      const target = await api.createUser('engineer');
      const before = (await api.get(`/v1/users/${target.id}`, admin.token)).body;
      for (const user of [manager, outsider, observer]) {
        assertForbidden(await api.patch(`/v1/users/${target.id}`, { role: 'admin' }, user.token));
      }
      assertForbidden(await api.patch(`/v1/users/${target.id}`, { role: 'admin' }, target.token));
      await assertUnchanged(`/v1/users/${target.id}`, before);
    });
  });

  describe('observers', () => {
    it('when an observer creates a project, then 403 and no project appears', async () => {
      const count = await total('/v1/projects');
      assertForbidden(await api.post('/v1/projects', { name: 'Наблюдение' }, observer.token));
      assert.equal(await total('/v1/projects'), count);
    });

    it('when an observer (a member) reports a defect, then 403 and no defect appears', async () => {
      const project = await createProject(owner);
      await addMembers(project.id, observer);
      const count = await total('/v1/defects');
      assertForbidden(await api.post('/v1/defects', { project_id: project.id, title: 'Замечание' }, observer.token));
      assert.equal(await total('/v1/defects'), count);
      assert.equal((await api.get(`/v1/defects?project_id=${project.id}`, admin.token)).body.total, 0);
    });

    it('an observer (a member) reads the lists and the items', async () => {
      const { project, defect } = await ownedDefect();
      await addMembers(project.id, observer);
      for (const path of [
        '/v1/projects',
        `/v1/projects/${project.id}`,
        '/v1/defects',
        `/v1/defects/${defect.id}`,
        '/v1/users',
      ]) {
        assertStatus(await api.get(path, observer.token), 200);
      }
      // The auth service learns of the membership from its event.
      await eventually(async () => (await api.get(`/v1/users/${owner.id}`, observer.token)).status === 200);
      assert.deepEqual((await api.get(`/v1/defects/${defect.id}`, observer.token)).body, defect);
      const list = await api.get(`/v1/defects?project_id=${project.id}`, observer.token);
      assert.deepEqual(
        list.body.items.map((item: any) => item.id),
        [defect.id],
      );
    });

    it('when an observer who is the assignee changes the defect, then 403: observers only read', async () => {
      const project = await createProject(owner);
      await addMembers(project.id, reporter, observer);
      const defect = await reportDefect(reporter, project.id, { assignee_id: observer.id });
      assertForbidden(await api.patch(`/v1/defects/${defect.id}`, { status: 'В работе' }, observer.token));
      await assertUnchanged(`/v1/defects/${defect.id}`, defect);
    });
  });

  describe('creating', () => {
    for (const role of ['engineer', 'manager'] as const) {
      it(`a ${role} creates a project (and owns it) and reports a defect (and is its reporter)`, async () => {
        const user = role === 'manager' ? manager : outsider;
        const project = await createProject(user, `Проект ${role}`);
        assert.equal(project.owner_id, user.id);
        const defect = await reportDefect(user, project.id);
        assert.equal(defect.reporter_id, user.id);
        assert.equal(defect.status, 'Новая');
      });
    }

    it('an engineer reports a defect in a project someone else owns (a member of it)', async () => {
      const project = await createProject(owner);
      await addMembers(project.id, outsider);
      const defect = await reportDefect(outsider, project.id);
      assert.equal(defect.reporter_id, outsider.id);
      assert.equal(defect.project_id, project.id);
    });
  });

  describe('changing projects', () => {
    it('when another engineer, a manager or an observer (members) PUTs, PATCHes or DELETEs a project, then 403 and it is unchanged', async () => {
      const project = await createProject(owner);
      await addMembers(project.id, outsider, manager, observer);
      const path = `/v1/projects/${project.id}`;
      for (const user of [outsider, manager, observer]) {
        assertForbidden(await api.put(path, { name: 'Переименован', description: null }, user.token));
        assertForbidden(await api.patch(path, { name: 'Переименован' }, user.token));
        assertForbidden(await api.delete(path, user.token));
      }
      await assertUnchanged(path, project);
    });

    it('the owner PUTs and PATCHes the project', async () => {
      const project = await createProject(owner);
      const put = await api.put(
        `/v1/projects/${project.id}`,
        { name: 'Новое имя', description: 'Новое описание' },
        owner.token,
      );
      assertStatus(put, 200);
      assert.equal(put.body.name, 'Новое имя');
      const patched = await api.patch(`/v1/projects/${project.id}`, { description: null }, owner.token);
      assertStatus(patched, 200);
      assert.deepEqual([patched.body.name, patched.body.description], ['Новое имя', null]);
    });

    it('an admin PUTs, PATCHes and DELETEs a project it does not own', async () => {
      const project = await createProject(owner);
      const path = `/v1/projects/${project.id}`;
      const put = await api.put(path, { name: 'Админ', description: 'изменил' }, admin.token);
      assertStatus(put, 200);
      assert.equal(put.body.owner_id, owner.id, 'the owner stays');
      assertStatus(await api.patch(path, { name: 'Админ 2' }, admin.token), 200);
      assertStatus(await api.delete(path, admin.token), 204);
      assertStatus(await api.get(path, admin.token), 404);
    });

    it('the owner deletes its project', async () => {
      const project = await createProject(owner);
      assertStatus(await api.delete(`/v1/projects/${project.id}`, owner.token), 204);
      assertStatus(await api.get(`/v1/projects/${project.id}`, owner.token), 404);
    });
  });

  describe('changing defects', () => {
    it('when an uninvolved engineer or manager (members) PUTs or PATCHes a defect, then 403 and it is unchanged', async () => {
      const { project, defect } = await ownedDefect();
      await addMembers(project.id, outsider, manager);
      const path = `/v1/defects/${defect.id}`;
      for (const user of [outsider, manager]) {
        assertForbidden(
          await api.put(path, { title: 'Чужая правка', status: 'В работе', priority: 'Низкий' }, user.token),
        );
        assertForbidden(await api.patch(path, { priority: 'Низкий' }, user.token));
      }
      await assertUnchanged(path, defect);
    });

    it('the reporter PUTs and PATCHes its defect', async () => {
      const { defect } = await ownedDefect();
      const put = await api.put(
        `/v1/defects/${defect.id}`,
        { title: 'Уточнено', status: 'В работе', priority: 'Критический' },
        reporter.token,
      );
      assertStatus(put, 200);
      assert.deepEqual([put.body.title, put.body.status, put.body.priority], ['Уточнено', 'В работе', 'Критический']);
      const patched = await api.patch(`/v1/defects/${defect.id}`, { description: 'Подробности' }, reporter.token);
      assertStatus(patched, 200);
      assert.equal(patched.body.description, 'Подробности');
    });

    it('an assignee set through assignee_id moves the defect through the workflow', async () => {
      const project = await createProject(owner);
      await addMembers(project.id, reporter, assignee);
      const defect = await reportDefect(reporter, project.id);
      assertForbidden(await api.patch(`/v1/defects/${defect.id}`, { status: 'В работе' }, assignee.token));

      const assigned = await api.patch(`/v1/defects/${defect.id}`, { assignee_id: assignee.id }, reporter.token);
      assertStatus(assigned, 200);
      assert.equal(assigned.body.assignee_id, assignee.id);

      const started = await api.patch(`/v1/defects/${defect.id}`, { status: 'В работе' }, assignee.token);
      assertStatus(started, 200);
      assert.equal(started.body.status, 'В работе');
      const resolved = await api.put(
        `/v1/defects/${defect.id}`,
        { title: defect.title, status: 'Решена', priority: 'Высокий' },
        assignee.token,
      );
      assertStatus(resolved, 200);
      assert.equal(resolved.body.status, 'Решена');
    });

    it("the project's owner changes a defect someone else reported", async () => {
      const { defect } = await ownedDefect();
      const response = await api.patch(`/v1/defects/${defect.id}`, { status: 'Отменена' }, owner.token);
      assertStatus(response, 200);
      assert.equal(response.body.status, 'Отменена');
    });

    it('an admin changes any defect', async () => {
      const { defect } = await ownedDefect();
      const response = await api.put(
        `/v1/defects/${defect.id}`,
        { title: 'Админ', status: 'В работе', priority: 'Низкий', assignee_id: null },
        admin.token,
      );
      assertStatus(response, 200);
      assert.deepEqual(
        [response.body.title, response.body.status, response.body.assignee_id],
        ['Админ', 'В работе', null],
      );
    });

    it('when the former assignee changes the defect after being unassigned, then 403', async () => {
      const { defect } = await ownedDefect();
      const unassigned = await api.patch(`/v1/defects/${defect.id}`, { assignee_id: null }, reporter.token);
      assertStatus(unassigned, 200);
      assertForbidden(await api.patch(`/v1/defects/${defect.id}`, { status: 'В работе' }, assignee.token));
      await assertUnchanged(`/v1/defects/${defect.id}`, unassigned.body);
    });
  });

  describe('deleting defects', () => {
    it('when the reporter (not the owner), the assignee, another engineer or an observer deletes a defect, then 403 and it stays', async () => {
      const { project, defect } = await ownedDefect();
      await addMembers(project.id, outsider, manager, observer);
      for (const user of [reporter, assignee, outsider, manager, observer]) {
        assertForbidden(await api.delete(`/v1/defects/${defect.id}`, user.token));
      }
      await assertUnchanged(`/v1/defects/${defect.id}`, defect);
    });

    it("the project's owner deletes a defect", async () => {
      const { defect } = await ownedDefect();
      assertStatus(await api.delete(`/v1/defects/${defect.id}`, owner.token), 204);
      assertStatus(await api.get(`/v1/defects/${defect.id}`, owner.token), 404);
    });

    it('an admin deletes a defect', async () => {
      const { defect } = await ownedDefect();
      assertStatus(await api.delete(`/v1/defects/${defect.id}`, admin.token), 204);
      assertStatus(await api.get(`/v1/defects/${defect.id}`, admin.token), 404);
    });
  });
});
