import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CONSUMER_NAMES } from '../../src/services/consumer-names.ts';
import { DEFAULT_PRIORITY, INITIAL_STATUS } from '../../src/services/defects/defect-workflow.ts';
import type { TestUser } from '../support/api-client.ts';
import { bindTestQueue, withBroker, type TestQueue } from '../support/broker.ts';
import { scrapeMetrics } from '../support/metrics.ts';
import { eventually, MODES, startTestSystem, type TestSystem } from '../support/test-system.ts';

for (const mode of MODES) {
  describe(`a deleted project takes its defects with it (${mode})`, () => {
    let system: TestSystem;
    let owner: TestUser;
    let queue: TestQueue | undefined;

    before(async () => {
      system = await startTestSystem({ mode });
      owner = await system.api.createUser('manager');
      if (mode === 'postgres') queue = await bindTestQueue(['project.deleted', 'defect.deleted']);
    });
    after(async () => {
      await queue?.close();
      await system?.close();
    });

    it('when a project is deleted, then each of its defects is deleted and publishes defect.deleted by who deleted the project', async () => {
      const { api } = system;
      const doomed = (await api.post('/v1/projects', { name: 'Снос' }, owner.token)).body;
      const kept = (await api.post('/v1/projects', { name: 'Остаётся' }, owner.token)).body;
      const doomedDefects: number[] = [];
      for (const title of ['Первый', 'Второй', 'Третий']) {
        doomedDefects.push((await api.post('/v1/defects', { project_id: doomed.id, title }, owner.token)).body.id);
      }
      const keptDefect = (await api.post('/v1/defects', { project_id: kept.id, title: 'Живой' }, owner.token)).body.id;

      const deletion = await api.delete(`/v1/projects/${doomed.id}`, owner.token);
      assert.equal(deletion.status, 204);
      await eventually(
        async () => (await api.get(`/v1/defects?project_id=${doomed.id}`, owner.token)).body.total === 0,
        10_000,
        'the defects gone',
      );
      for (const id of doomedDefects) assert.equal((await api.get(`/v1/defects/${id}`, owner.token)).status, 404);
      assert.equal((await api.get(`/v1/defects/${keptDefect}`, owner.token)).status, 200);

      const refused = await api.post('/v1/defects', { project_id: doomed.id, title: 'Поздно' }, owner.token);
      assert.equal(refused.status, 404);

      if (queue) {
        // Everything the deletion published is here once the outboxes are empty and the queue drained.
        await queue.settle(system.host.db);
        const deleted = queue.messages.filter(
          (m) => m.routingKey === 'defect.deleted' && doomedDefects.includes(m.body.data.defect_id),
        );
        assert.deepEqual(
          deleted.map((m) => m.body.data),
          doomedDefects.map((id) => ({ defect_id: id, deleted_by: owner.id })),
        );
        for (const message of deleted) {
          assert.equal(message.body.user_id, owner.id);
          assert.equal(
            message.headers?.['x-request-id'],
            deletion.headers.get('x-request-id'),
            'the deleting request is followed through',
          );
        }
      }
    });

    if (mode === 'postgres') {
      it('when project.deleted is delivered twice, then the inbox skips the second: no defect is deleted and no defect.deleted goes out again', async () => {
        const { api } = system;
        const projectDeletedCount = async (result: 'ok' | 'duplicate') =>
          (await scrapeMetrics(system.url)).value('events_consumed_total', {
            consumer: CONSUMER_NAMES.defectsProjectDirectory,
            event_type: 'project.deleted',
            result,
          });
        // A project of this test's own, deleted and handled once.
        const doomed = (await api.post('/v1/projects', { name: 'Дважды' }, owner.token)).body;
        const doomedDefects: number[] = [];
        for (const title of ['Первый', 'Второй']) {
          doomedDefects.push((await api.post('/v1/defects', { project_id: doomed.id, title }, owner.token)).body.id);
        }
        const handledBefore = await projectDeletedCount('ok');
        assert.equal((await api.delete(`/v1/projects/${doomed.id}`, owner.token)).status, 204);
        const original = await eventually(
          () => queue!.messages.find((m) => m.routingKey === 'project.deleted' && m.body.data.project_id === doomed.id),
          10_000,
          "the project.deleted of this test's project",
        );
        // The counter moves after the handler's transaction committed.
        await eventually(
          async () => (await projectDeletedCount('ok')) === handledBefore + 1,
          10_000,
          'the first delivery handled',
        );
        await queue!.settle(system.host.db);
        const deletionsOfDoomed = () =>
          queue!.messages.filter(
            (m) => m.routingKey === 'defect.deleted' && doomedDefects.includes(m.body.data.defect_id),
          );
        assert.equal(
          deletionsOfDoomed().length,
          doomedDefects.length,
          'one defect.deleted per defect of the first handling',
        );

        // A defect of the deleted project that the first handling did not see (the API refuses
        // to create one now, so it goes straight into the table): a second run of the handler
        // would delete it and publish a defect.deleted for it; a skipped duplicate leaves it.
        const { rows } = await system.host.db.query<{ id: number }>(
          `INSERT INTO defects.defects (project_id, title, status, priority, reporter_id)
           VALUES ($1, 'Опоздавший', $2, $3, $4) RETURNING id`,
          [doomed.id, INITIAL_STATUS, DEFAULT_PRIORITY, owner.id],
        );
        const straggler = rows[0].id;
        const duplicatesBefore = await projectDeletedCount('duplicate');

        const before = queue!.messages.length;
        await withBroker(async (connection) => {
          const publisher = connection.createPublisher({ confirm: true });
          await publisher.send(
            {
              exchange: 'events',
              routingKey: 'project.deleted',
              durable: true,
              messageId: original.messageId,
              contentType: 'application/json',
              headers: original.headers,
            },
            Buffer.from(JSON.stringify(original.body)),
          );
          await publisher.close();
        });
        await eventually(() => queue!.messages.length === before + 1, 5_000, 'the republished event');
        // The counter moves after the consumer's transaction committed: by then a second run of
        // the handler would have deleted the straggler and stored its defect.deleted.
        const duplicates = await eventually(
          async () => {
            const count = await projectDeletedCount('duplicate');
            return count > duplicatesBefore ? count : undefined;
          },
          10_000,
          'the consumer to skip the duplicate',
        );
        assert.equal(duplicates, duplicatesBefore + 1, 'the one redelivery counted once as a duplicate');
        assert.equal(await projectDeletedCount('ok'), handledBefore + 1, 'the handler did not run again');
        const left = await system.host.db.query('SELECT id FROM defects.defects WHERE id = $1', [straggler]);
        assert.equal(left.rowCount, 1, 'the second delivery deleted nothing');
        // A second run would have stored its defect.deleted with its commit: published by the time the outboxes are empty.
        await queue!.settle(system.host.db);
        assert.deepEqual(
          queue!.messages.filter((m) => m.routingKey === 'defect.deleted' && m.body.data.defect_id === straggler),
          [],
          'no defect.deleted for the straggler',
        );
        assert.equal(deletionsOfDoomed().length, doomedDefects.length, "the first deletion's, no more");
      });
    }
  });
}
