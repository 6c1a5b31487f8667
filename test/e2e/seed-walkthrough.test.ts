import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bindTestQueue, type TestQueue } from '../support/broker.ts';
import { eventually, MODES, startTestSystem, type TestSystem } from '../support/test-system.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// The seed's "КАК ПРОТЕСТИРОВАТЬ", steps 2–7, against the all-in-one process on its one port, as written
// there; then the README's step 8.
for (const mode of MODES) {
  describe(`seed walkthrough (${mode})`, () => {
    let system: TestSystem;
    let queue: TestQueue | undefined;
    let token: string;

    before(async () => {
      if (mode === 'postgres') queue = await bindTestQueue(['project.*', 'defect.*']);
      system = await startTestSystem({ mode });
    });
    after(async () => {
      await queue?.close();
      await system?.close();
    });

    it('step 2: the demo user gets a token from the form-encoded OAuth2 endpoint', async () => {
      const response = await system.api.request('POST', '/v1/auth/token', {
        form: { username: 'testuser', password: '123456' },
      });
      assert.equal(response.status, 200);
      assert.equal(response.body.token_type, 'bearer');
      assert.equal(typeof response.body.expires_in, 'number');
      token = response.body.access_token;
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    });

    it('steps 2–3: creating a project logs project.created as the seed shows', async () => {
      const response = await system.api.post(
        '/v1/projects/',
        { name: 'Тестовый проект', description: 'Описание' },
        token,
      );
      assert.equal(response.status, 201);
      assert.equal(response.body.name, 'Тестовый проект');
      const line = await eventually(() =>
        system.logs.eventLines().find((l) => l.startsWith('[EVENT] project.created')),
      );
      assert.match(
        line,
        new RegExp(
          `^\\[EVENT\\] project\\.created \\| ID: [0-9a-f-]{36} \\| User: ${response.body.owner_id} \\| Data: \\{"project_id": ${response.body.id}, "name": "Тестовый проект", "owner_id": ${response.body.owner_id}\\}$`,
        ),
      );
    });

    it('steps 4–5: creating a defect logs defect.created with every field of the contract', async () => {
      const response = await system.api.post(
        '/v1/defects/',
        {
          title: 'Критическая ошибка',
          description: 'Описание ошибки',
          status: 'Новая',
          priority: 'Высокий',
          project_id: 1,
        },
        token,
      );
      assert.equal(response.status, 201);
      assert.equal(response.body.status, 'Новая');
      const line = await eventually(() => system.logs.eventLines().find((l) => l.startsWith('[EVENT] defect.created')));
      assert.ok(
        line.endsWith(
          `| User: 1 | Data: {"defect_id": 1, "title": "Критическая ошибка", "status": "Новая", "priority": "Высокий", "project_id": 1, "reporter_id": 1}`,
        ),
        line,
      );
    });

    it('steps 6–7: a PUT that changes the status logs status_changed, then updated', async () => {
      const response = await system.api.put(
        '/v1/defects/1',
        {
          title: 'Критическая ошибка',
          description: 'Описание ошибки',
          status: 'В работе',
          priority: 'Высокий',
        },
        token,
      );
      assert.equal(response.status, 200);
      assert.equal(response.body.status, 'В работе');
      const lines = await eventually(() => {
        const found = system.logs.eventLines().filter((l) => /defect\.(status_changed|updated)/.test(l));
        return found.length === 2 ? found : undefined;
      });
      assert.match(
        lines[0],
        /^\[EVENT\] defect\.status_changed \| ID: .+ \| User: 1 \| Data: \{"defect_id": 1, "old_status": "Новая", "new_status": "В работе", "changed_by": 1\}$/,
      );
      assert.match(
        lines[1],
        /^\[EVENT\] defect\.updated \| ID: .+ \| User: 1 \| Data: \{"defect_id": 1, "title": "Критическая ошибка", "updated_by": 1\}$/,
      );
    });

    if (mode === 'postgres') {
      it('every event of the walkthrough reached RabbitMQ, in order, once', async () => {
        const messages = await queue!.waitFor(4);
        // Nothing left to publish, and everything published came before a marker sent now.
        await queue!.settle(system.host.db);
        assert.deepEqual(
          queue!.messages.map((message) => message.routingKey),
          ['project.created', 'defect.created', 'defect.status_changed', 'defect.updated'],
        );
        for (const message of messages) {
          assert.match(message.messageId!, UUID);
          assert.equal(message.body.event_id, message.messageId);
        }
      });
    }

    it('step 8 (the README): a registered member is assigned the defect, moves it on, and both mails are logged', async () => {
      const { api } = system;
      const ivan = await api.post('/v1/auth/register', {
        username: 'ivan',
        password: 'kran-na-obekte-7',
        email: 'ivan@example.com',
        full_name: 'Иван Петров',
      });
      assert.equal(ivan.status, 201, JSON.stringify(ivan.body));
      const ivanToken = await api.login('ivan', 'kran-na-obekte-7');
      const member = await api.post('/v1/projects/1/members', { user_id: ivan.body.id }, token);
      assert.equal(member.status, 201, JSON.stringify(member.body));
      const assigned = await api.patch('/v1/defects/1', { assignee_id: ivan.body.id }, token);
      assert.equal(assigned.status, 200, JSON.stringify(assigned.body));
      const moved = await api.patch('/v1/defects/1', { status: 'Решена' }, ivanToken);
      assert.equal(moved.status, 200, JSON.stringify(moved.body));
      const mails = await eventually(() => {
        const found = system.logs.messages().filter((message) => message.startsWith('Отправка email'));
        return found.length === 2 ? found : undefined;
      });
      assert.deepEqual(mails.sort(), [
        `Отправка email: Дефект #1 изменил статус на 'Решена'`,
        `Отправка email: Дефект #1 назначен исполнителю Иван Петров`,
      ]);
    });
  });
}
