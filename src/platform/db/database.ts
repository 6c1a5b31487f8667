import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';

/** What every repository needs from a database: the same SQL on PostgreSQL and on PGlite. */
export interface Queryable {
  query<Row = Record<string, any>>(sql: string, params?: unknown[]): Promise<{ rows: Row[]; rowCount: number }>;
  /** Runs a script of several statements, without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'embedded';
  /** Runs fn in one transaction: committed when fn resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function createPostgresDatabase(pool: pg.Pool): Database {
  return {
    kind: 'postgres',
    async query(sql, params) {
      const result = await pool.query(sql, params as unknown[]);
      return { rows: result.rows, rowCount: result.rowCount ?? 0 };
    },
    async exec(sql) {
      await pool.query(sql);
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          async query(sql, params) {
            const r = await client.query(sql, params as unknown[]);
            return { rows: r.rows, rowCount: r.rowCount ?? 0 };
          },
          async exec(sql) {
            await client.query(sql);
          },
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

export function createEmbeddedDatabase(pglite: PGlite): Database {
  const wrap = (runner: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
    async query(sql, params) {
      const result = await runner.query(sql, params as unknown[]);
      return { rows: result.rows as any[], rowCount: result.affectedRows ?? result.rows.length };
    },
    async exec(sql) {
      await runner.exec(sql);
    },
  });
  return {
    kind: 'embedded',
    ...wrap(pglite),
    transaction: (fn) => pglite.transaction((tx) => fn(wrap(tx))),
    close: () => pglite.close(),
  };
}
