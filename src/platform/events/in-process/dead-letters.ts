import type { Database } from '../../db/database.ts';
import { HEADERS, type DeadLetterQueues, type ParkedMessage, type ParkedSelection } from '../transport.ts';
import { parseOrText, SCHEMA, type DeliveryRow } from './schema.ts';

type ParkedRow = DeliveryRow & { park_reason: string; last_error: string; parked_at: Date };

/** The parked rows of each queue: counted, listed, replayed (`wakeWorkers` then) or purged. */
export function createDeadLetters(db: Database, wakeWorkers: () => void): DeadLetterQueues {
  const where = (selection: ParkedSelection) =>
    'all' in selection ? { sql: '', params: [] as string[] } : { sql: ' AND message_id = $2', params: [selection.id] };

  return {
    async count(consumer) {
      const { rows } = await db.query<{ count: number }>(
        `SELECT count(*)::int AS count FROM ${SCHEMA}.deliveries WHERE queue = $1 AND parked_at IS NOT NULL`,
        [consumer],
      );
      return rows[0].count;
    },
    async list(consumer) {
      const { rows } = await db.query<ParkedRow>(
        `SELECT id, routing_key, message_id, body, headers, attempt, park_reason, last_error, parked_at
         FROM ${SCHEMA}.deliveries WHERE queue = $1 AND parked_at IS NOT NULL ORDER BY parked_at, id`,
        [consumer],
      );
      return rows.map((row) => toParkedMessage(consumer, row));
    },
    async replay(consumer, selection) {
      const filter = where(selection);
      const { rowCount } = await db.query(
        `UPDATE ${SCHEMA}.deliveries SET parked_at = NULL, park_reason = NULL, attempt = 1, available_at = now(),
           headers = headers - '${HEADERS.attempt}'
         WHERE queue = $1 AND parked_at IS NOT NULL${filter.sql}`,
        [consumer, ...filter.params],
      );
      wakeWorkers();
      return rowCount;
    },
    async purge(consumer, selection) {
      const filter = where(selection);
      const { rowCount } = await db.query(
        `DELETE FROM ${SCHEMA}.deliveries WHERE queue = $1 AND parked_at IS NOT NULL${filter.sql}`,
        [consumer, ...filter.params],
      );
      return rowCount;
    },
  };
}

function toParkedMessage(consumer: string, row: ParkedRow): ParkedMessage {
  const body = parseOrText(row.body);
  return {
    id: row.message_id,
    consumer,
    eventType: eventTypeOf(body),
    attempts: row.attempt,
    reason: row.park_reason as ParkedMessage['reason'],
    error: row.last_error ?? '',
    parkedAt: row.parked_at.toISOString(),
    body,
  };
}

function eventTypeOf(body: unknown): string | null {
  const eventType =
    typeof body === 'object' && body !== null ? (body as { event_type?: unknown }).event_type : undefined;
  return typeof eventType === 'string' ? eventType : null;
}
