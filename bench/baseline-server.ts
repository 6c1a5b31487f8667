/**
 * The write baseline: the least a service can do for POST /v1/defects — Fastify, one
 * parameterised INSERT of the same row on the same PostgreSQL, no auth, no outbox, no gateway.
 */
import Fastify from 'fastify';
import pg from 'pg';

const databaseUrl = process.env.DATABASE_URL!;
const port = Number(process.env.PORT ?? 8100);
const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });

await pool.query(`
  CREATE TABLE IF NOT EXISTS bench_baseline_defects (
    id serial PRIMARY KEY, project_id integer NOT NULL, title text NOT NULL, description text,
    status text NOT NULL, priority text NOT NULL, reporter_id integer NOT NULL, assignee_id integer,
    due_date date, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`);

const app = Fastify();
app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/v1/defects', async (request, reply) => {
  const body = request.body as { project_id: number; title: string };
  const { rows } = await pool.query(
    `INSERT INTO bench_baseline_defects (project_id, title, status, priority, reporter_id)
     VALUES ($1, $2, 'Новая', 'Средний', 1) RETURNING *`,
    [body.project_id, body.title],
  );
  return reply.code(201).send(rows[0]);
});
await app.listen({ host: '127.0.0.1', port });
