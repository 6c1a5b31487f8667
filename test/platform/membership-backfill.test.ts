import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitForEmptyOutboxes } from '../support/broker.ts';
import { eventually, MODES, startTestSystem } from '../support/test-system.ts';

// A database from before membership: its projects and defects, with reporters and assignees
// who are nobody's member. The membership migrations make each project's owner, and its
// defects' reporters and assignees, members (projects.members, and the copies of auth and
// defects), so nobody loses what they could see or do before.

/** What the membership migrations created, taken back: the schema as it was before them. */
const BEFORE_MEMBERSHIP = `
  DROP TABLE projects.members, projects.known_users, projects.inbox;
  DELETE FROM projects.schema_migrations WHERE id IN ('projects/members-1', 'platform/inbox-1');
  DROP TABLE auth.project_members, auth.deleted_projects, auth.inbox;
  DELETE FROM auth.schema_migrations WHERE id IN ('auth/project-members-1', 'platform/inbox-1');
  DROP TABLE defects.project_members, defects.deleted_projects;
  DELETE FROM defects.schema_migrations WHERE id = 'defects/project-members-1';
`;

for (const mode of MODES) {
  describe(`membership of data from before it (${mode})`, () => {
    it('when the migrations run on old data, then owners, reporters and assignees are members and see what they saw', async () => {
      let system = await startTestSystem({ mode });
      const { api } = system;
      const [admin, owner, reporter, assignee, stranger] = await Promise.all([
        api.createUser('admin'),
        api.createUser('engineer'),
        api.createUser('engineer'),
        api.createUser('engineer'),
        api.createUser('engineer'),
      ]);
      const project = (await api.post('/v1/projects', { name: 'Старый объект' }, owner.token)).body;
      const empty = (await api.post('/v1/projects', { name: 'Пустой' }, owner.token)).body;
      const defect = (await api.post('/v1/defects', { project_id: project.id, title: 'Старый дефект' }, owner.token))
        .body;
      await waitForEmptyOutboxes(system.host.db);
      await eventually(async () => {
        const { rows } = await system.host.db.query('SELECT 1 FROM defects.known_projects WHERE id = $1', [empty.id]);
        return rows.length === 1;
      });
      // As a system without membership would have let them: another reporter and an assignee.
      await system.host.db.query(`UPDATE defects.defects SET reporter_id = $2, assignee_id = $3 WHERE id = $1`, [
        defect.id,
        reporter.id,
        assignee.id,
      ]);
      await system.host.db.exec(BEFORE_MEMBERSHIP);
      await system.close({ keepData: true });

      system = await startTestSystem({
        mode,
        reuse: { DATABASE_URL: system.env.DATABASE_URL, DATA_DIR: system.env.DATA_DIR },
      });
      try {
        const members = await system.api.get(`/v1/projects/${project.id}/members`, admin.token);
        assert.equal(members.status, 200, JSON.stringify(members.body));
        assert.deepEqual(
          members.body.items.map((item: { user_id: number }) => item.user_id),
          [owner.id, reporter.id, assignee.id].sort((a, b) => a - b),
        );
        const emptyMembers = await system.api.get(`/v1/projects/${empty.id}/members`, admin.token);
        assert.deepEqual(
          emptyMembers.body.items.map((item: { user_id: number; username: string }) => [item.user_id, item.username]),
          [[owner.id, owner.username]],
          'the owner, known by name from the users carried over',
        );
        for (const user of [owner, reporter, assignee]) {
          assert.equal((await system.api.get(`/v1/projects/${project.id}`, user.token)).status, 200, user.username);
          assert.equal((await system.api.get(`/v1/defects/${defect.id}`, user.token)).status, 200, user.username);
          const users = await system.api.get('/v1/users', user.token);
          assert.deepEqual(
            users.body.items.map((item: { id: number }) => item.id),
            [owner.id, reporter.id, assignee.id].sort((a, b) => a - b),
            `${user.username} lists those sharing a project`,
          );
        }
        assert.equal((await system.api.get(`/v1/projects/${project.id}`, stranger.token)).status, 404);
        assert.equal((await system.api.get(`/v1/defects/${defect.id}`, stranger.token)).status, 404);
        // A member carried over is one like any other: the owner can add more.
        assert.equal(
          (await system.api.post(`/v1/projects/${project.id}/members`, { user_id: stranger.id }, owner.token)).status,
          201,
        );
      } finally {
        await system.close();
      }
    });
  });
}
