import type { Queryable } from '../../platform/db/database.ts';
import type { EventHandlers } from '../../platform/events/event-consumer.ts';

export interface KnownUser {
  id: number;
  username: string;
  email: string;
  full_name: string | null;
}

export interface KnownDefect {
  id: number;
  project_id: number | null;
  reporter_id: number | null;
  title: string | null;
  status: string | null;
  priority: string | null;
  assignee_id: number | null;
  deleted_at: Date | null;
}

export interface KnownProject {
  id: number;
  name: string | null;
  deleted_at: Date | null;
}

/**
 * What the notifications service knows of users, projects and defects: copies kept from
 * their events (user.*, project.*, defect.*), never read from the other services' tables.
 * Every handler is an upsert that tolerates any order: a field's value changes only when the
 * event that brings it is at least as recent as the one that set it (see migrations.ts).
 */
export const directory = {
  async findUser(tx: Queryable, id: number): Promise<KnownUser | undefined> {
    const { rows } = await tx.query<KnownUser>(
      'SELECT id, username, email, full_name FROM notifications.users WHERE id = $1',
      [id],
    );
    return rows[0];
  },

  async findDefect(tx: Queryable, id: number): Promise<KnownDefect | undefined> {
    const { rows } = await tx.query<KnownDefect>(
      `SELECT id, project_id, reporter_id, title, status, priority, assignee_id, deleted_at FROM notifications.defects WHERE id = $1`,
      [id],
    );
    return rows[0];
  },

  async findProject(tx: Queryable, id: number): Promise<KnownProject | undefined> {
    const { rows } = await tx.query<KnownProject>(
      'SELECT id, name, deleted_at FROM notifications.projects WHERE id = $1',
      [id],
    );
    return rows[0];
  },

  /** Records the status a defect moved to (when this event is the latest word on it). */
  setStatus: (tx: Queryable, defectId: number, status: string, at: string) =>
    setIfNewer(tx, 'defects', 'status', defectId, status, at),

  setAssignee: (tx: Queryable, defectId: number, assigneeId: number | null, at: string) =>
    setIfNewer(tx, 'defects', 'assignee_id', defectId, assigneeId, at),
};

/** Each copied field keeps the time of the event that set it, so a late event cannot undo a newer one. */
const FIELD_TIMES = { status: 'status_at', assignee_id: 'assignee_at', title: 'title_at', name: 'name_at' } as const;

const setIfNewer = (
  tx: Queryable,
  table: 'defects' | 'projects',
  field: keyof typeof FIELD_TIMES,
  id: number,
  value: unknown,
  at: string,
) => {
  const fieldAt = FIELD_TIMES[field];
  return tx.query(
    `INSERT INTO notifications.${table} AS t (id, ${field}, ${fieldAt}) VALUES ($1, $2, $3::timestamp)
     ON CONFLICT (id) DO UPDATE SET ${field} = EXCLUDED.${field}, ${fieldAt} = EXCLUDED.${fieldAt}
     WHERE t.${fieldAt} IS NULL OR t.${fieldAt} <= EXCLUDED.${fieldAt}`,
    [id, value, at],
  );
};

const setTitle = (tx: Queryable, defectId: number, title: string, at: string) =>
  setIfNewer(tx, 'defects', 'title', defectId, title, at);

const setProjectName = (tx: Queryable, projectId: number, name: string, at: string) =>
  setIfNewer(tx, 'projects', 'name', projectId, name, at);

/** The first deletion's time stays, however often the event comes. */
const markDeleted = (tx: Queryable, table: 'projects' | 'defects', id: number, at: string) =>
  tx.query(
    `INSERT INTO notifications.${table} AS t (id, deleted_at) VALUES ($1, $2::timestamp)
     ON CONFLICT (id) DO UPDATE SET deleted_at = coalesce(t.deleted_at, EXCLUDED.deleted_at)`,
    [id, at],
  );

const done = () => undefined;

/** The handlers that only keep the copies current (the mailing ones use them too). */
export const directoryHandlers = {
  'user.registered': (tx, event) =>
    tx
      .query(
        `INSERT INTO notifications.users (id, username, email, full_name) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, email = EXCLUDED.email, full_name = EXCLUDED.full_name`,
        [event.data.user_id, event.data.username, event.data.email, event.data.full_name ?? null],
      )
      .then(done),

  'project.created': (tx, event) =>
    setProjectName(tx, event.data.project_id, event.data.name, event.timestamp).then(done),

  'project.updated': (tx, event) =>
    setProjectName(tx, event.data.project_id, event.data.name, event.timestamp).then(done),

  'project.deleted': (tx, event) => markDeleted(tx, 'projects', event.data.project_id, event.timestamp).then(done),

  'defect.created': async (tx, event) => {
    const { defect_id, project_id, reporter_id, priority, title, status } = event.data;
    // One statement (every defect write brings one): title and status only if no newer event set them.
    await tx.query(
      `INSERT INTO notifications.defects AS d (id, project_id, reporter_id, priority, title, title_at, status, status_at)
       VALUES ($1, $2, $3, $4, $5, $7::timestamp, $6, $7::timestamp)
       ON CONFLICT (id) DO UPDATE SET project_id = EXCLUDED.project_id, reporter_id = EXCLUDED.reporter_id,
         priority = coalesce(d.priority, EXCLUDED.priority),
         title = CASE WHEN d.title_at IS NULL OR d.title_at <= EXCLUDED.title_at THEN EXCLUDED.title ELSE d.title END,
         title_at = greatest(d.title_at, EXCLUDED.title_at),
         status = CASE WHEN d.status_at IS NULL OR d.status_at <= EXCLUDED.status_at THEN EXCLUDED.status ELSE d.status END,
         status_at = greatest(d.status_at, EXCLUDED.status_at)`,
      [defect_id, project_id, reporter_id, priority, title, status, event.timestamp],
    );
  },

  // Nobody to mail about an unassignment; the old assignee just stops hearing of the defect.
  'defect.unassigned': (tx, event) => directory.setAssignee(tx, event.data.defect_id, null, event.timestamp).then(done),

  'defect.updated': (tx, event) => setTitle(tx, event.data.defect_id, event.data.title, event.timestamp).then(done),

  'defect.deleted': (tx, event) => markDeleted(tx, 'defects', event.data.defect_id, event.timestamp).then(done),
} satisfies EventHandlers;
