import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { EventContractViolation } from '../../src/contracts/events.ts';
import { createEmbeddedDatabase, type Database } from '../../src/platform/db/database.ts';
import { migrate } from '../../src/platform/db/migrate.ts';
import { createOutbox, outboxMigrations, type Outbox } from '../../src/platform/events/outbox.ts';
import { createBaseApp } from '../../src/platform/http/http-app.ts';
import { createMetrics } from '../../src/platform/metrics/metrics.ts';
import { captureLogs } from '../support/log-capture.ts';

const SCHEMA = 'contract_check';

/**
 * The outbox refuses an event whose data breaks the contract: a programming error, so the
 * change rolls back with it and the request answers 500, its log line naming the field.
 * (Producers are typed from the contract; the cast below is how a bug would get past that.)
 */
describe('the outbox checks events against the contract', () => {
  let db: Database;
  let outbox: Outbox;

  before(async () => {
    db = createEmbeddedDatabase(new PGlite());
    await migrate(db, SCHEMA, [...outboxMigrations, { id: 'things', sql: 'CREATE TABLE {schema}.things (name text)' }]);
    outbox = createOutbox({ db, schema: SCHEMA });
  });
  after(async () => db?.close());

  const countRows = async (table: string) =>
    (await db.query<{ count: number }>(`SELECT count(*)::int AS count FROM ${SCHEMA}.${table}`)).rows[0].count;

  const breakTheContract = () =>
    outbox.transaction({ userId: 1 }, async (tx, events) => {
      await tx.query(`INSERT INTO ${SCHEMA}.things (name) VALUES ('half done')`);
      events.add('defect.updated', { defect_id: 1, title: 'Трещина', updated_by: 'Иван' } as never);
    });

  it("when an event's data does not match its type, then the transaction rolls back with the change, naming the field", async () => {
    await assert.rejects(breakTheContract(), (error: Error) => {
      assert.ok(error instanceof EventContractViolation);
      assert.match(error.message, /defect\.updated: data\.updated_by/);
      return true;
    });
    assert.equal(await countRows('things'), 0);
    assert.equal(await countRows('outbox'), 0);
  });

  it("when a field is misspelt or an event type is not the contract's, then it is refused too", async () => {
    const misspelt = outbox.transaction({ userId: 1 }, async (_tx, events) => {
      events.add('defect.updated', { defect_id: 1, title: 'Трещина', updatd_by: 1 } as never);
    });
    await assert.rejects(misspelt, /data\.updatd_by/);
    const unknown = outbox.transaction({ userId: 1 }, async (_tx, events) => {
      events.add('defect.renamed' as never, {} as never);
    });
    await assert.rejects(unknown, /defect\.renamed is not an event type of the contract/);
    assert.equal(await countRows('outbox'), 0);
  });

  it("when a request's change breaks the contract, then it answers 500 and the log line names the field", async () => {
    const logs = captureLogs('error');
    const app = createBaseApp(logs.log, createMetrics());
    app.post('/things', async () => breakTheContract());
    try {
      const response = await app.inject({ method: 'POST', url: '/things' });
      assert.equal(response.statusCode, 500);
      assert.equal(response.json().code, 'INTERNAL_ERROR');
      const logged = logs.lines.find((line) => line.msg === 'unhandled error');
      assert.match(String(logged?.err?.message), /defect\.updated: data\.updated_by/);
    } finally {
      await app.close();
    }
  });
});
