import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiClient, ApiResponse, TestUser } from '../support/api-client.ts';
import { MODES, startTestSystem, type TestSystem } from '../support/test-system.ts';

// Lists (pages, totals, order, filters), routing details (trailing slashes, request ids,
// OpenAPI) and the plain create/read/replace/patch/delete round trips.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const ids = (response: ApiResponse) => response.body.items.map((item: { id: number }) => item.id) as number[];

function assertStatus(response: ApiResponse, status: number) {
  assert.equal(response.status, status, `${response.status} ${JSON.stringify(response.body)}`);
}

function assertAscending(values: number[]) {
  for (let i = 1; i < values.length; i += 1)
    assert.ok(values[i - 1] < values[i], `not ordered by id: ${values.join(', ')}`);
}

for (const mode of MODES) {
  describe(`lists and round trips (${mode})`, () => {
    let system: TestSystem;
    let api: ApiClient;
    let user: TestUser;

    const get = async (path: string) => {
      const response = await api.get(path, user.token);
      assertStatus(response, 200);
      return response;
    };
    const createProject = async (name: string, description: string | null = null, as = user) => {
      const response = await api.post('/v1/projects', { name, description }, as.token);
      assertStatus(response, 201);
      return response.body;
    };
    const reportDefect = async (projectId: number, fields: Record<string, unknown> = {}) => {
      const response = await api.post('/v1/defects', { project_id: projectId, title: 'Дефект', ...fields }, user.token);
      assertStatus(response, 201);
      return response.body;
    };
    const moveTo = async (defectId: number, ...statuses: string[]) => {
      for (const status of statuses)
        assertStatus(await api.patch(`/v1/defects/${defectId}`, { status }, user.token), 200);
    };

    before(async () => {
      system = await startTestSystem({ mode });
      api = system.api;
      user = await api.createUser('engineer');
    });
    after(async () => {
      await system?.close();
    });

    describe('pagination', () => {
      for (const kind of ['projects', 'defects'] as const) {
        it(`${kind}: 50 by default, ordered by id, with limit, offset and the total of everything`, async () => {
          const holder = kind === 'defects' ? await createProject('Проект для страниц') : undefined;
          for (let i = 1; i <= 55; i += 1) {
            if (holder) await reportDefect(holder.id, { title: `Дефект ${i}` });
            else await createProject(`Проект ${i}`);
          }
          const base = kind === 'defects' ? `/v1/${kind}?project_id=${holder!.id}&` : `/v1/${kind}?`;

          const everything = await get(`${base}limit=200`);
          const all = ids(everything);
          assert.ok(all.length >= 55, `${all.length} ${kind}`);
          assert.equal(everything.body.total, all.length);
          assertAscending(all);

          const first = await get(base.slice(0, -1));
          assert.deepEqual(
            { ...first.body, items: ids(first) },
            { items: all.slice(0, 50), total: all.length, limit: 50, offset: 0 },
          );

          const middle = await get(`${base}limit=10&offset=20`);
          assert.deepEqual(
            { ...middle.body, items: ids(middle) },
            { items: all.slice(20, 30), total: all.length, limit: 10, offset: 20 },
          );

          const tail = await get(`${base}offset=50`);
          assert.deepEqual(ids(tail), all.slice(50));
          assert.equal(tail.body.total, all.length);

          const beyond = await get(`${base}limit=5&offset=${all.length + 10}`);
          assert.deepEqual(
            { ...beyond.body, items: ids(beyond) },
            { items: [], total: all.length, limit: 5, offset: all.length + 10 },
          );
        });
      }

      it('every list refuses an offset past 10,000 with a 422 naming the offset, and takes 10,000', async () => {
        const adminToken = await api.login('admin', 'admin-secret');
        for (const path of ['/v1/users', '/v1/projects', '/v1/defects', '/v1/events', '/v1/admin/dead-letters']) {
          const refused = await api.get(`${path}?offset=10001`, adminToken);
          assert.equal(refused.status, 422, `${path}: ${JSON.stringify(refused.body)}`);
          assert.match(refused.body.detail, /offset/);
          assert.equal((await api.get(`${path}?offset=10000`, adminToken)).status, 200, path);
        }
      });

      it('projects filter by owner_id', async () => {
        const other = await api.createUser('engineer');
        const theirs = [await createProject('Чужой 1', null, other), await createProject('Чужой 2', null, other)];
        // Only members see a project (issue 11).
        for (const project of theirs) await api.addMembers(project.id, other.token, user);
        const page = await get(`/v1/projects?owner_id=${other.id}`);
        assert.deepEqual(
          ids(page),
          theirs.map((project) => project.id),
        );
        assert.equal(page.body.total, 2);
      });
    });

    describe('defect filters', () => {
      let p1: any;
      let p2: any;
      let a1: TestUser;
      let a2: TestUser;
      const d: Record<string, any> = {};

      before(async () => {
        [a1, a2] = [await api.createUser('engineer'), await api.createUser('engineer')];
        p1 = await createProject('Фильтры 1');
        p2 = await createProject('Фильтры 2');
        // An assignee must be a member of the project (issue 11).
        for (const project of [p1, p2]) await api.addMembers(project.id, user.token, a1, a2);
        d.newHighA1 = await reportDefect(p1.id, { priority: 'Высокий', assignee_id: a1.id });
        d.workLowA2 = await reportDefect(p1.id, { priority: 'Низкий', assignee_id: a2.id });
        d.workHighA2 = await reportDefect(p1.id, { priority: 'Высокий', assignee_id: a2.id });
        d.newHighA1InP2 = await reportDefect(p2.id, { priority: 'Высокий', assignee_id: a1.id });
        d.cancelledCritical = await reportDefect(p2.id, { priority: 'Критический' });
        await moveTo(d.workLowA2.id, 'В работе');
        await moveTo(d.workHighA2.id, 'В работе');
        await moveTo(d.cancelledCritical.id, 'Отменена');
      });

      const expectIds = async (query: string, expected: number[]) => {
        const page = await get(`/v1/defects?${query}`);
        assert.deepEqual(ids(page), expected, query);
        assert.equal(page.body.total, expected.length, query);
        return page;
      };

      it('by project_id', async () => {
        await expectIds(`project_id=${p1.id}`, [d.newHighA1.id, d.workLowA2.id, d.workHighA2.id]);
        await expectIds(`project_id=${p2.id}`, [d.newHighA1InP2.id, d.cancelledCritical.id]);
        await expectIds('project_id=999999', []);
      });

      it('by status, and every defect listed has that status', async () => {
        const page = await get(`/v1/defects?status=${encodeURIComponent('В работе')}&limit=200`);
        assert.ok(
          page.body.items.every((item: any) => item.status === 'В работе'),
          JSON.stringify(page.body.items),
        );
        assert.deepEqual(ids(page), [d.workLowA2.id, d.workHighA2.id]);
        await expectIds(`status=${encodeURIComponent('Отменена')}`, [d.cancelledCritical.id]);
      });

      it('by priority, and every defect listed has that priority', async () => {
        const page = await get(`/v1/defects?priority=${encodeURIComponent('Высокий')}&limit=200`);
        assert.ok(page.body.items.every((item: any) => item.priority === 'Высокий'));
        assert.deepEqual(ids(page), [d.newHighA1.id, d.workHighA2.id, d.newHighA1InP2.id]);
      });

      it('by assignee_id', async () => {
        await expectIds(`assignee_id=${a1.id}`, [d.newHighA1.id, d.newHighA1InP2.id]);
        await expectIds(`assignee_id=${a2.id}`, [d.workLowA2.id, d.workHighA2.id]);
      });

      it('by several filters at once, all of which must match', async () => {
        const inWork = encodeURIComponent('В работе');
        const high = encodeURIComponent('Высокий');
        await expectIds(`project_id=${p1.id}&status=${inWork}`, [d.workLowA2.id, d.workHighA2.id]);
        await expectIds(`project_id=${p1.id}&priority=${high}&assignee_id=${a2.id}`, [d.workHighA2.id]);
        await expectIds(`assignee_id=${a1.id}&project_id=${p2.id}`, [d.newHighA1InP2.id]);
        await expectIds(`project_id=${p2.id}&status=${inWork}`, []);
        await expectIds(
          `priority=${encodeURIComponent('Критический')}&status=${encodeURIComponent('Отменена')}&project_id=${p2.id}`,
          [d.cancelledCritical.id],
        );
      });

      it('filters combine with pages: the total counts every match, not the page', async () => {
        const page = await get(`/v1/defects?project_id=${p1.id}&limit=2&offset=1`);
        assert.deepEqual(ids(page), [d.workLowA2.id, d.workHighA2.id]);
        assert.deepEqual([page.body.total, page.body.limit, page.body.offset], [3, 2, 1]);
      });
    });

    describe('routing', () => {
      it('paths work with and without the trailing slash', async () => {
        const project = await createProject('Слэш');
        const viaSlash = await api.post('/v1/defects/', { project_id: project.id, title: 'Через слэш' }, user.token);
        assertStatus(viaSlash, 201);
        const defect = viaSlash.body;

        assert.deepEqual((await get('/v1/projects/')).body, (await get('/v1/projects')).body);
        assert.deepEqual((await get(`/v1/projects/${project.id}/`)).body, project);
        assert.deepEqual((await get(`/v1/defects/${defect.id}`)).body, defect);
        assert.deepEqual((await get(`/v1/defects/${defect.id}/`)).body, defect);
        assert.deepEqual(ids(await get(`/v1/defects/?project_id=${project.id}`)), [defect.id]);

        const patched = await api.patch(`/v1/defects/${defect.id}/`, { priority: 'Низкий' }, user.token);
        assertStatus(patched, 200);
        assert.equal(patched.body.priority, 'Низкий');
      });

      it('/docs/json is an OpenAPI document listing the API paths, without a token', async () => {
        const response = await api.get('/docs/json');
        assertStatus(response, 200);
        assert.match(response.headers.get('content-type') ?? '', /json/);
        assert.match(response.body.openapi, /^3\./);
        const paths = response.body.paths as Record<string, Record<string, unknown>>;
        for (const path of [
          '/v1/auth/token',
          '/v1/auth/register',
          '/v1/users/me',
          '/v1/projects',
          '/v1/projects/{id}',
          '/v1/defects',
          '/v1/defects/{id}',
        ]) {
          assert.ok(paths[path], `${path} missing from ${Object.keys(paths).join(', ')}`);
        }
        assert.deepEqual(Object.keys(paths['/v1/defects/{id}']).sort(), ['delete', 'get', 'patch', 'put']);
        assert.deepEqual(Object.keys(paths['/v1/defects']).sort(), ['get', 'post']);
        assert.equal(paths['/healthz'], undefined, 'hidden routes stay hidden');
      });

      it('/docs serves the HTML page', async () => {
        const response = await api.get('/docs');
        assertStatus(response, 200);
        assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
        assert.match(String(response.body), /<html/i);
      });

      it('x-request-id is echoed when sent, in the header and in an error body', async () => {
        const ok = await api.request('GET', '/v1/projects', {
          token: user.token,
          headers: { 'x-request-id': 'lists-test.42' },
        });
        assertStatus(ok, 200);
        assert.equal(ok.headers.get('x-request-id'), 'lists-test.42');
        const failed = await api.request('GET', '/v1/defects/999999', {
          token: user.token,
          headers: { 'x-request-id': 'lists-test:404' },
        });
        assertStatus(failed, 404);
        assert.equal(failed.headers.get('x-request-id'), 'lists-test:404');
        assert.equal(failed.body.request_id, 'lists-test:404');
      });

      it('x-request-id is generated, a new one each time, when none is sent', async () => {
        const first = await api.get('/v1/projects', user.token);
        const second = await api.get('/v1/projects', user.token);
        const generated = [first, second].map((response) => response.headers.get('x-request-id') ?? '');
        for (const id of generated) assert.match(id, UUID);
        assert.notEqual(generated[0], generated[1]);
      });

      it('an unusable x-request-id (spaces, symbols, over 128 characters) is replaced by a generated one', async () => {
        for (const unusable of ['has spaces & symbols <>', 'x'.repeat(129)]) {
          const response = await api.request('GET', '/v1/projects', {
            token: user.token,
            headers: { 'x-request-id': unusable },
          });
          assertStatus(response, 200);
          assert.match(response.headers.get('x-request-id') ?? '', UUID, `sent ${unusable.slice(0, 30)}`);
        }
      });
    });

    describe('round trips', () => {
      it('a defect reported right after its project was created is accepted (5 times over)', async () => {
        for (let i = 1; i <= 5; i += 1) {
          const project = await createProject(`Свежий ${i}`);
          const response = await api.post('/v1/defects', { project_id: project.id, title: `Сразу ${i}` }, user.token);
          assertStatus(response, 201);
          assert.equal(response.body.project_id, project.id);
          assert.deepEqual((await get(`/v1/defects/${response.body.id}`)).body, response.body);
        }
      });

      it('a PUT with identical data returns 200 and the data, unchanged', async () => {
        const project = await createProject('Как есть', 'Описание');
        const samePut = await api.put(
          `/v1/projects/${project.id}`,
          { name: project.name, description: project.description },
          user.token,
        );
        assertStatus(samePut, 200);
        assert.deepEqual(samePut.body, project);

        const defect = await reportDefect(project.id, { description: 'Подробно', priority: 'Высокий' });
        const fields = {
          title: defect.title,
          description: defect.description,
          status: defect.status,
          priority: defect.priority,
        };
        const response = await api.put(`/v1/defects/${defect.id}`, fields, user.token);
        assertStatus(response, 200);
        assert.deepEqual(response.body, defect);
        assert.deepEqual((await get(`/v1/defects/${defect.id}`)).body, defect);
      });

      it('a PUT replaces the fields it is given', async () => {
        const project = await createProject('Заменить', 'Старое');
        const replaced = await api.put(
          `/v1/projects/${project.id}`,
          { name: 'Заменён', description: 'Новое' },
          user.token,
        );
        assertStatus(replaced, 200);
        assert.deepEqual(
          [replaced.body.name, replaced.body.description, replaced.body.owner_id],
          ['Заменён', 'Новое', project.owner_id],
        );
        assert.deepEqual((await get(`/v1/projects/${project.id}`)).body, replaced.body);
      });

      it('a PATCH changes only the fields it is given', async () => {
        const assignee = await api.createUser('engineer');
        const project = await createProject('Частично', 'Не трогать');
        await api.addMembers(project.id, user.token, assignee);
        const defect = await reportDefect(project.id, {
          description: 'Исходное',
          priority: 'Средний',
          assignee_id: assignee.id,
          due_date: '2030-05-17',
        });
        const unchanged = (body: any, ...changed: string[]) => {
          const keep = (record: any) =>
            Object.fromEntries(Object.entries(record).filter(([key]) => ![...changed, 'updated_at'].includes(key)));
          assert.deepEqual(keep(body), keep(defect));
        };

        const priority = await api.patch(`/v1/defects/${defect.id}`, { priority: 'Критический' }, user.token);
        assertStatus(priority, 200);
        assert.equal(priority.body.priority, 'Критический');
        unchanged(priority.body, 'priority');

        const dueDate = await api.patch(`/v1/defects/${defect.id}`, { due_date: null }, user.token);
        assertStatus(dueDate, 200);
        assert.equal(dueDate.body.due_date, null);
        assert.equal(dueDate.body.priority, 'Критический');
        unchanged(dueDate.body, 'priority', 'due_date');
        assert.deepEqual((await get(`/v1/defects/${defect.id}`)).body, dueDate.body);

        const renamed = await api.patch(`/v1/projects/${project.id}`, { name: 'Частично 2' }, user.token);
        assertStatus(renamed, 200);
        assert.deepEqual([renamed.body.name, renamed.body.description], ['Частично 2', 'Не трогать']);
      });

      it('a DELETE answers 204, then the item is 404 and gone from the list', async () => {
        const project = await createProject('Удалить');
        const defect = await reportDefect(project.id);

        const deletedDefect = await api.delete(`/v1/defects/${defect.id}`, user.token);
        assertStatus(deletedDefect, 204);
        assert.equal(deletedDefect.body, undefined, 'no body');
        assertStatus(await api.get(`/v1/defects/${defect.id}`, user.token), 404);
        assert.deepEqual(ids(await get(`/v1/defects?project_id=${project.id}`)), []);
        assertStatus(await api.delete(`/v1/defects/${defect.id}`, user.token), 404);

        assertStatus(await api.delete(`/v1/projects/${project.id}`, user.token), 204);
        const gone = await api.get(`/v1/projects/${project.id}`, user.token);
        assertStatus(gone, 404);
        assert.match(gone.body.detail, new RegExp(`Project ${project.id}`));
        assert.ok(!ids(await get('/v1/projects?limit=200')).includes(project.id));
      });
    });
  });
}
