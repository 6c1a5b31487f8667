import type { Database } from './database.ts';

export interface Migration {
  /** Never renamed once released: it is what the migrations table remembers. */
  id: string;
  sql: string;
}

/**
 * Applies a service's pending migrations in its own schema. An advisory lock keeps
 * several replicas starting at once from applying the same migration twice.
 */
export async function migrate(db: Database, schema: string, migrations: Migration[]): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`migrate:${schema}`]);
    await tx.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await tx.query<{ id: string }>(`SELECT id FROM ${schema}.schema_migrations`);
    const applied = new Set(rows.map((row) => row.id));
    for (const migration of migrations) {
      if (applied.has(migration.id)) continue;
      await tx.exec(migration.sql.replaceAll('{schema}', schema));
      await tx.query(`INSERT INTO ${schema}.schema_migrations (id) VALUES ($1)`, [migration.id]);
    }
  });
}
