import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { TestUser } from '../support/api-client.ts';
import { freePort } from '../support/free-port.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

/**
 * A defect reported against a project whose project.created the defects service has not
 * received yet: the all-in-one process asks its projects module directly, never its own
 * HTTP port. PROJECTS_URL points at a closed port, so a call over HTTP would answer 503.
 */
describe('the all-in-one process looks up an unheard-of project in-process', () => {
  let system: TestSystem;
  let owner: TestUser;

  before(async () => {
    const closedPort = await freePort();
    system = await startTestSystem({ mode: 'postgres', env: { PROJECTS_URL: `http://127.0.0.1:${closedPort}` } });
    owner = await system.api.createUser('manager');
  });
  after(async () => system?.close());

  it("when the project is not in the defects service's copy yet, then the defect is created from the projects module", async () => {
    const db = new pg.Client({ connectionString: system.env.DATABASE_URL });
    await db.connect();
    try {
      // Holding the copy's table against writes keeps project.created from reaching it while
      // the request looks, and lets the request's own remembering of the project wait too.
      await db.query('BEGIN');
      await db.query('LOCK TABLE defects.known_projects IN SHARE ROW EXCLUSIVE MODE');
      const project = (await system.api.post('/v1/projects', { name: 'Свежий' }, owner.token)).body;
      const creating = system.api.post('/v1/defects', { project_id: project.id, title: 'Сразу' }, owner.token);
      // Both the consumer's copy of project.created and the request wait on the lock: the
      // request found no copy and looked the project up.
      await eventually(
        async () => {
          // pg_stat_activity is read once per transaction unless the snapshot is cleared.
          await db.query('SELECT pg_stat_clear_snapshot()');
          const { rows } = await db.query<{ waiting: number }>(
            `SELECT count(*)::int AS waiting FROM pg_stat_activity
           WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO defects.known_projects%'`,
          );
          return rows[0].waiting >= 2;
        },
        10_000,
        'the consumer and the request waiting to store the project',
      );
      await db.query('COMMIT');
      const created = await creating;
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.project_id, project.id);
    } finally {
      await db.end();
    }
  });
});
