import type { Database, Queryable } from '../../db/database.ts';
import type { OutgoingMessage } from '../transport.ts';
import { topicMatches } from '../transport.ts';
import { SCHEMA } from './schema.ts';

interface Binding {
  exchange: string;
  patterns: string[];
}

export interface Router {
  /** Stores each message in every queue bound to it, through `tx`: delivered once tx commits. */
  route(exchange: string, messages: OutgoingMessage[], tx: Queryable): Promise<void>;
  /** Replaces a queue's bindings, here at once and in the table (resolves once recorded). */
  bind(queue: string, exchange: string, patterns: string[]): Promise<void>;
}

/**
 * Topic routing to queues, as a RabbitMQ topic exchange would: the bindings live in memory
 * (read from the table at start) and in the table. `stored` is called after rows were stored.
 */
export async function createRouter(db: Database, stored: () => void): Promise<Router> {
  const bindings = await loadBindings(db);
  return {
    async route(exchange, messages, tx) {
      const rows = messages.flatMap((message) =>
        [...bindings]
          .filter(
            ([, binding]) =>
              binding.exchange === exchange &&
              binding.patterns.some((pattern) => topicMatches(pattern, message.routingKey)),
          )
          .map(([queue]) => ({ queue, message })),
      );
      if (rows.length === 0) return;
      await tx.query(
        `INSERT INTO ${SCHEMA}.deliveries (queue, routing_key, message_id, body, headers)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])`,
        [
          rows.map((row) => row.queue),
          rows.map((row) => row.message.routingKey),
          rows.map((row) => row.message.messageId),
          rows.map((row) => row.message.body.toString('utf8')),
          rows.map((row) => JSON.stringify(row.message.headers)),
        ],
      );
      stored();
    },
    bind(queue, exchange, patterns) {
      bindings.set(queue, { exchange, patterns });
      return db.transaction(async (tx) => {
        await tx.query(`DELETE FROM ${SCHEMA}.bindings WHERE queue = $1`, [queue]);
        for (const pattern of patterns) {
          await tx.query(`INSERT INTO ${SCHEMA}.bindings (queue, pattern, exchange) VALUES ($1, $2, $3)`, [
            queue,
            pattern,
            exchange,
          ]);
        }
      });
    },
  };
}

async function loadBindings(db: Database): Promise<Map<string, Binding>> {
  const bindings = new Map<string, Binding>();
  const { rows } = await db.query<{ queue: string; pattern: string; exchange: string }>(
    `SELECT queue, pattern, exchange FROM ${SCHEMA}.bindings`,
  );
  for (const row of rows) {
    bindings.set(row.queue, {
      exchange: row.exchange,
      patterns: [...(bindings.get(row.queue)?.patterns ?? []), row.pattern],
    });
  }
  return bindings;
}
