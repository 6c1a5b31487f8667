import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { createEmbeddedDatabase, createPostgresDatabase, type Database } from '../../src/platform/db/database.ts';
import { TEST_POSTGRES_URL } from '../support/environment.ts';

/** The same SQL answers the same on PostgreSQL and on PGlite: code may not tell them apart. */
const backends: Array<[string, () => Database]> = [
  [
    'postgres',
    () => createPostgresDatabase(new pg.Pool({ connectionString: `${TEST_POSTGRES_URL}/postgres`, max: 1 })),
  ],
  ['embedded', () => createEmbeddedDatabase(new PGlite())],
];

for (const [kind, open] of backends) {
  describe(`database rows and counts (${kind})`, () => {
    it('rowCount is the number of rows a SELECT returned, or a change touched', async () => {
      const db = open();
      try {
        assert.equal((await db.query('SELECT * FROM generate_series(1, 3)')).rowCount, 3);
        assert.equal((await db.query('SELECT 1 WHERE false')).rowCount, 0);
        await db.exec('CREATE TEMP TABLE counted (n int)');
        assert.equal((await db.query('INSERT INTO counted SELECT * FROM generate_series(1, 4)')).rowCount, 4);
        assert.equal((await db.query('UPDATE counted SET n = n + 1 WHERE n > 2')).rowCount, 2);
        assert.equal((await db.query('DELETE FROM counted WHERE n > 100')).rowCount, 0);
      } finally {
        await db.close();
      }
    });
  });
}
