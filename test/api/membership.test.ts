import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiClient, ApiResponse, TestUser } from '../support/api-client.ts';
import { bindTestQueue, type TestQueue } from '../support/broker.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

// Membership's own rules (decision 008): the events, the idempotent add, the refusals that
// name their field, what a removal leaves, and the lookup that covers an event not yet heard.

function assertStatus(response: ApiResponse, status: number) {
  assert.equal(response.status, status, `${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

describe('project membership (postgres)', () => {
  let system: TestSystem;
  let api: ApiClient;
  let queue: TestQueue;
  let admin: TestUser;
  let owner: TestUser;
  let member: TestUser;

  const createProject = async () =>
    assertStatus(await api.post('/v1/projects', { name: 'Тоннель' }, owner.token), 201) as { id: number };

  /** The events published by `action`, as the broker delivered them (routing key and data). */
  const publishedBy = async (action: () => Promise<unknown>) => {
    await queue.settle(system.host.db);
    const from = queue.messages.length;
    await action();
    await queue.settle(system.host.db);
    return queue.messages
      .slice(from)
      .map((message) => ({ type: message.routingKey, data: (message.body as { data: unknown }).data }));
  };

  before(async () => {
    system = await startTestSystem({ mode: 'postgres' });
    api = system.api;
    queue = await bindTestQueue(['project.*', 'defect.*']);
    [admin, owner, member] = await Promise.all([
      api.createUser('admin'),
      api.createUser('engineer'),
      api.createUser('engineer'),
    ]);
  });
  after(async () => {
    await queue?.close();
    await system?.close();
  });

  it('when the owner adds a member, then 201 and project.member_added; adding them again is 200 and publishes nothing', async () => {
    const project = await createProject();
    const path = `/v1/projects/${project.id}/members`;
    let added: ApiResponse | undefined;
    const events = await publishedBy(async () => (added = await api.post(path, { user_id: member.id }, owner.token)));
    const body = assertStatus(added!, 201);
    assert.deepEqual(
      { user_id: body.user_id, username: body.username, is_owner: body.is_owner, added_by: body.added_by },
      { user_id: member.id, username: member.username, is_owner: false, added_by: owner.id },
    );
    assert.deepEqual(events, [
      { type: 'project.member_added', data: { project_id: project.id, user_id: member.id, added_by: owner.id } },
    ]);

    let again: ApiResponse | undefined;
    assert.deepEqual(
      await publishedBy(async () => (again = await api.post(path, { user_id: member.id }, owner.token))),
      [],
    );
    assertStatus(again!, 200);
    const list = assertStatus(await api.get(path, member.token), 200);
    // Ordered by user id.
    assert.deepEqual(
      list.items.map((item: { user_id: number; is_owner: boolean }) => [item.user_id, item.is_owner]),
      [
        [owner.id, true],
        [member.id, false],
      ].sort(([a], [b]) => Number(a) - Number(b)),
    );
    assert.equal(list.total, 2);
  });

  it('when a user id that does not exist is added, then 422 naming user_id, and nothing is published', async () => {
    const project = await createProject();
    let response: ApiResponse | undefined;
    const events = await publishedBy(
      async () => (response = await api.post(`/v1/projects/${project.id}/members`, { user_id: 999999 }, owner.token)),
    );
    assertStatus(response!, 422);
    assert.equal(response!.body.code, 'MEMBER_UNKNOWN_USER');
    assert.match(response!.body.detail, /user_id/);
    assert.deepEqual(response!.body.errors, [{ loc: 'body.user_id', msg: 'no user with id 999999' }]);
    assert.deepEqual(events, []);
  });

  it('when the owner is removed, then 409 saying so; removing a member publishes project.member_removed and keeps their defects', async () => {
    const project = await createProject();
    await api.addMembers(project.id, owner.token, member);
    const refused = await api.delete(`/v1/projects/${project.id}/members/${owner.id}`, admin.token);
    assertStatus(refused, 409);
    assert.equal(refused.body.code, 'PROJECT_OWNER_NOT_REMOVABLE');
    assert.match(refused.body.detail, /owns project/);

    const defect = assertStatus(
      await api.post('/v1/defects', { project_id: project.id, title: 'Течь', assignee_id: member.id }, member.token),
      201,
    );
    const events = await publishedBy(async () =>
      assertStatus(await api.delete(`/v1/projects/${project.id}/members/${member.id}`, owner.token), 204),
    );
    assert.deepEqual(events, [
      { type: 'project.member_removed', data: { project_id: project.id, user_id: member.id, removed_by: owner.id } },
    ]);
    assertStatus(await api.delete(`/v1/projects/${project.id}/members/${member.id}`, owner.token), 404);

    // The defect stays, as it was; its former reporter no longer sees it or its project.
    assert.deepEqual(assertStatus(await api.get(`/v1/defects/${defect.id}`, admin.token), 200), defect);
    assertStatus(await api.get(`/v1/projects/${project.id}`, member.token), 404);
    await eventually(
      async () => (await api.get(`/v1/defects/${defect.id}`, member.token)).status === 404,
      10_000,
      'the defects service to hear of the removal',
    );
    assertStatus(await api.patch(`/v1/defects/${defect.id}`, { priority: 'Низкий' }, member.token), 404);
  });

  it('when the assignee is not a member, then 422 naming assignee_id, on creation and on change, and nothing is published', async () => {
    const project = await createProject();
    const outsider = await api.createUser('engineer');
    const defect = assertStatus(
      await api.post('/v1/defects', { project_id: project.id, title: 'Скол' }, owner.token),
      201,
    );
    let created: ApiResponse | undefined;
    let changed: ApiResponse | undefined;
    const events = await publishedBy(async () => {
      created = await api.post(
        '/v1/defects',
        { project_id: project.id, title: 'Скол 2', assignee_id: outsider.id },
        owner.token,
      );
      changed = await api.patch(`/v1/defects/${defect.id}`, { assignee_id: outsider.id }, owner.token);
    });
    for (const response of [created!, changed!]) {
      assertStatus(response, 422);
      assert.equal(response.body.code, 'DEFECT_ASSIGNEE_NOT_MEMBER');
      assert.match(response.body.detail, /assignee_id/);
      assert.equal(response.body.errors[0].loc, 'body.assignee_id');
    }
    assert.deepEqual(events, []);
    assert.deepEqual(assertStatus(await api.get(`/v1/defects/${defect.id}`, owner.token), 200), defect);
  });

  it("when the defects service has not heard of a membership yet, then the projects service's answer decides", async () => {
    const project = await createProject();
    const late = await api.createUser('engineer');
    await api.addMembers(project.id, owner.token, late);
    // The membership event has arrived (or will): take it back from the copy, as if it had not.
    await queue.settle(system.host.db);
    await eventually(async () => {
      const { rows } = await system.host.db.query(
        'DELETE FROM defects.project_members WHERE project_id = $1 AND user_id = $2 RETURNING 1',
        [project.id, late.id],
      );
      return rows.length === 1;
    });
    const defect = assertStatus(
      await api.post(
        '/v1/defects',
        { project_id: project.id, title: 'Новая трещина', assignee_id: late.id },
        late.token,
      ),
      201,
    );
    assertStatus(await api.get(`/v1/defects/${defect.id}`, late.token), 200);
    const listed = assertStatus(await api.get(`/v1/defects?project_id=${project.id}`, late.token), 200);
    assert.deepEqual(
      listed.items.map((item: { id: number }) => item.id),
      [defect.id],
    );
  });
});
