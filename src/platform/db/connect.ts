import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { createEmbeddedDatabase, createPostgresDatabase, type Database } from './database.ts';
import { PG_DUPLICATE_DATABASE } from './pg-errors.ts';

// int8 (counts, bigserial ids) as numbers: ours stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10));

export interface DatabaseOptions {
  databaseUrl?: string;
  poolSize: number;
  dataDir: string;
}

/** PostgreSQL when a URL is given (the database is created if missing), else PGlite under dataDir. */
export async function connectDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) {
    await createDatabaseIfMissing(options.databaseUrl);
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize });
    // An idle client's error (the server restarted) must not kill the process; the pool replaces it.
    pool.on('error', () => undefined);
    return createPostgresDatabase(pool);
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const directory = path.join(options.dataDir, 'pg');
  await fs.mkdir(directory, { recursive: true });
  const pglite = await PGlite.create(directory);
  return createEmbeddedDatabase(pglite);
}

export function describeDatabase(databaseUrl: string | undefined, dataDir: string): string {
  if (!databaseUrl) return `embedded PostgreSQL (PGlite) in ${path.join(dataDir, 'pg')}`;
  const url = new URL(databaseUrl);
  return `PostgreSQL at ${url.hostname}:${url.port || 5432}${url.pathname}`;
}

async function createDatabaseIfMissing(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!name) return;
  const probe = new pg.Client({ connectionString: databaseUrl });
  try {
    await probe.connect();
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error; // anything but "database does not exist"
  } finally {
    await probe.end().catch(() => undefined);
  }
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } catch (error) {
    if ((error as { code?: string }).code !== PG_DUPLICATE_DATABASE) throw error;
  } finally {
    await admin.end();
  }
}
