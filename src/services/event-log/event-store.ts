import type { Queryable } from '../../platform/db/database.ts';
import { parseEventTimestamp, type EventEnvelope } from '../../platform/events/envelope.ts';
import type { DeliveryReport } from '../../platform/events/transport.ts';
import { filterToSql, type EventFilter, type RecordedEvent } from './event-filter.ts';

const COLUMNS = `seq, event_id, event_type, user_id, timestamp_text AS timestamp, occurred_at, data, project_id, defect_id`;

export interface DeliveryStatus {
  consumer: string;
  status: DeliveryReport['status'];
  attempt: number;
  next_attempt_at: Date | null;
  last_error: string | null;
  reason: string | null;
  reported_at: Date;
}

export const eventStore = {
  /** Stores an event once; the project it concerns is remembered for its defect's later events. */
  async record(tx: Queryable, event: EventEnvelope): Promise<void> {
    const data = event.data as Record<string, unknown>;
    const defectId = integerOrNull(data.defect_id);
    const projectId = integerOrNull(data.project_id);
    if (event.event_type === 'defect.created' && defectId !== null && projectId !== null) {
      await tx.query(
        'INSERT INTO event_log.defect_projects (defect_id, project_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [defectId, projectId],
      );
    }
    // A defect's later events name no project: it is looked up in the same statement.
    await tx.query(
      `INSERT INTO event_log.events (event_id, event_type, user_id, timestamp_text, occurred_at, data, project_id, defect_id)
       VALUES ($1, $2, $3, $4, $5, $6,
         coalesce($7::int, (SELECT project_id FROM event_log.defect_projects WHERE defect_id = $8::int)), $8)
       ON CONFLICT (event_id) DO NOTHING`,
      [event.event_id, event.event_type, event.user_id, event.timestamp, parseEventTimestamp(event.timestamp), JSON.stringify(event.data), projectId, defectId],
    );
  },

  /** Newest first. */
  async list(db: Queryable, filter: EventFilter, page: { limit: number; offset: number }) {
    const { where, params } = filterToSql(filter);
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const [items, count] = await Promise.all([
      db.query<RecordedEvent>(
        `SELECT ${COLUMNS} FROM event_log.events ${clause} ORDER BY seq DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, page.limit, page.offset],
      ),
      db.query<{ total: number }>(`SELECT count(*)::int AS total FROM event_log.events ${clause}`, params),
    ]);
    return { items: items.rows, total: count.rows[0].total };
  },

  /** Oldest first, after `afterSeq` (the stream's catch-up and the defect history). */
  async listAfter(db: Queryable, filter: EventFilter, afterSeq: number, limit: number, untilSeq?: number): Promise<RecordedEvent[]> {
    const { where, params } = filterToSql(filter, 3);
    const upper = untilSeq === undefined ? '' : ` AND seq <= ${Number(untilSeq)}`;
    const { rows } = await db.query<RecordedEvent>(
      `SELECT ${COLUMNS} FROM event_log.events WHERE seq > $1${upper}${where.map((w) => ` AND ${w}`).join('')} ORDER BY seq LIMIT $2`,
      [afterSeq, limit, ...params],
    );
    return rows;
  },

  async count(db: Queryable, filter: EventFilter): Promise<number> {
    const { where, params } = filterToSql(filter);
    const { rows } = await db.query<{ total: number }>(
      `SELECT count(*)::int AS total FROM event_log.events ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}`,
      params,
    );
    return rows[0].total;
  },

  async latestSeq(db: Queryable): Promise<number> {
    const { rows } = await db.query<{ seq: number | null }>('SELECT max(seq) AS seq FROM event_log.events');
    return rows[0].seq ?? 0;
  },

  async findById(db: Queryable, eventId: string): Promise<RecordedEvent | undefined> {
    const { rows } = await db.query<RecordedEvent>(`SELECT ${COLUMNS} FROM event_log.events WHERE event_id = $1`, [eventId]);
    return rows[0];
  },

  /** Reports arrive at least once, possibly late, many at a time: the newest report wins. */
  async recordDeliveries(db: Queryable, reports: DeliveryReport[]): Promise<void> {
    const latest = new Map<string, DeliveryReport>();
    for (const report of reports) {
      const key = `${report.event_id} ${report.consumer}`;
      const known = latest.get(key);
      if (!known || known.at <= report.at) latest.set(key, report);
    }
    const rows = [...latest.values()];
    const column = <K extends keyof DeliveryReport>(key: K) => rows.map((report) => report[key]);
    await db.query(
      `INSERT INTO event_log.deliveries (event_id, consumer, event_type, status, attempt, next_attempt_at, last_error, reason, reported_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[], $7::text[], $8::text[], $9::timestamptz[])
       ON CONFLICT (event_id, consumer) DO UPDATE SET
         status = EXCLUDED.status, attempt = EXCLUDED.attempt, next_attempt_at = EXCLUDED.next_attempt_at,
         last_error = EXCLUDED.last_error, reason = EXCLUDED.reason, reported_at = EXCLUDED.reported_at
       WHERE event_log.deliveries.reported_at <= EXCLUDED.reported_at`,
      [column('event_id'), column('consumer'), column('event_type'), column('status'), column('attempt'),
        column('next_attempt_at'), column('error'), column('reason'), column('at')],
    );
  },

  async deliveriesOf(db: Queryable, eventId: string): Promise<DeliveryStatus[]> {
    const { rows } = await db.query<DeliveryStatus>(
      `SELECT consumer, status, attempt, next_attempt_at, last_error, reason, reported_at
       FROM event_log.deliveries WHERE event_id = $1 ORDER BY consumer`,
      [eventId],
    );
    return rows;
  },
};

function integerOrNull(value: unknown): number | null {
  return Number.isInteger(value) ? (value as number) : null;
}
