import type { Queryable } from '../../platform/db/database.ts';
import { parseEventTimestamp, type EventEnvelope } from '../../platform/events/envelope.ts';
import type { DeliveryReport } from '../../platform/events/transport.ts';
import { filterToSql, type EventFilter, type RecordedEvent } from './event-filter.ts';
import { eventLogMembers } from './members.ts';

const COLUMNS = `seq, event_id, event_type, user_id, timestamp_text AS timestamp, occurred_at, data, project_id, defect_id, subject_user_id`;

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
  /**
   * Stores events once each, numbered in the order given; the project a defect belongs to is
   * remembered from its defect.created and looked up for its later events. Membership events
   * change the event log's copy of project membership in the same transaction (decision 010).
   */
  async recordMany(tx: Queryable, events: EventEnvelope[]): Promise<void> {
    if (events.length === 0) return;
    const rows = events.map((event) => {
      const data = event.data;
      return {
        event,
        projectId: integerOrNull(data.project_id),
        defectId: integerOrNull(data.defect_id),
        subjectUserId: event.event_type.startsWith('user.') ? integerOrNull(data.user_id) : null,
      };
    });
    const created = rows.filter(
      (row) => row.event.event_type === 'defect.created' && row.defectId !== null && row.projectId !== null,
    );
    if (created.length > 0) {
      await tx.query(
        'INSERT INTO event_log.defect_projects (defect_id, project_id) SELECT * FROM unnest($1::int[], $2::int[]) ON CONFLICT DO NOTHING',
        [created.map((row) => row.defectId), created.map((row) => row.projectId)],
      );
    }
    const { rows: inserted } = await tx.query<{ event_id: string }>(
      `INSERT INTO event_log.events (event_id, event_type, user_id, timestamp_text, occurred_at, data, project_id, defect_id, subject_user_id)
       SELECT e.event_id, e.event_type, e.user_id, e.timestamp_text, e.occurred_at, e.data::json,
         coalesce(e.project_id, (SELECT project_id FROM event_log.defect_projects d WHERE d.defect_id = e.defect_id)), e.defect_id,
         e.subject_user_id
       FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::timestamptz[], $6::text[], $7::int[], $8::int[], $9::int[])
         WITH ORDINALITY AS e(event_id, event_type, user_id, timestamp_text, occurred_at, data, project_id, defect_id, subject_user_id, position)
       ORDER BY e.position
       ON CONFLICT (event_id) DO NOTHING
       RETURNING event_id`,
      [
        rows.map((row) => row.event.event_id),
        rows.map((row) => row.event.event_type),
        rows.map((row) => row.event.user_id),
        rows.map((row) => row.event.timestamp),
        rows.map((row) => parseEventTimestamp(row.event.timestamp)),
        rows.map((row) => JSON.stringify(row.event.data)),
        rows.map((row) => row.projectId),
        rows.map((row) => row.defectId),
        rows.map((row) => row.subjectUserId),
      ],
    );
    // Only events stored now, in the order recorded: a copy delivered again changes nothing.
    const stored = new Set(inserted.map((row) => row.event_id));
    for (const event of events) {
      if (stored.has(event.event_id)) await eventLogMembers.apply(tx, event);
    }
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
  async listAfter(
    db: Queryable,
    filter: EventFilter,
    afterSeq: number,
    limit: number,
    untilSeq?: number,
  ): Promise<RecordedEvent[]> {
    const { where, params } = filterToSql(filter, 4);
    // The bound as a parameter: statements are prepared by their text, which must not vary.
    const { rows } = await db.query<RecordedEvent>(
      `SELECT ${COLUMNS} FROM event_log.events WHERE seq > $1 AND seq <= $3${where.map((w) => ` AND ${w}`).join('')} ORDER BY seq LIMIT $2`,
      [afterSeq, limit, untilSeq ?? Number.MAX_SAFE_INTEGER, ...params],
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

  /** The event, if the filter's viewer may see it (any event for an admin's filter). */
  async findById(db: Queryable, eventId: string, filter: EventFilter): Promise<RecordedEvent | undefined> {
    const { where, params } = filterToSql(filter, 2);
    const { rows } = await db.query<RecordedEvent>(
      `SELECT ${COLUMNS} FROM event_log.events WHERE event_id = $1${where.map((w) => ` AND ${w}`).join('')}`,
      [eventId, ...params],
    );
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
      [
        column('event_id'),
        column('consumer'),
        column('event_type'),
        column('status'),
        column('attempt'),
        column('next_attempt_at'),
        column('error'),
        column('reason'),
        column('at'),
      ],
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
