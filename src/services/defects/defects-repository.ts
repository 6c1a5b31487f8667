import type { Queryable } from '../../platform/db/database.ts';
import type { DefectPriority, DefectStatus } from './defect-workflow.ts';
import type { KnownProject } from './project-directory.ts';

export interface Defect {
  id: number;
  project_id: number;
  title: string;
  description: string | null;
  status: DefectStatus;
  priority: DefectPriority;
  reporter_id: number;
  assignee_id: number | null;
  due_date: string | null;
  created_at: Date;
  updated_at: Date;
}

export type DefectFields = Pick<Defect, 'title' | 'description' | 'status' | 'priority' | 'assignee_id' | 'due_date'>;

export interface DefectFilter {
  project_id?: number;
  status?: DefectStatus;
  priority?: DefectPriority;
  assignee_id?: number;
}

// due_date as text: a calendar date has no time zone to be shifted into.
const COLUMNS = `id, project_id, title, description, status, priority, reporter_id, assignee_id,
  to_char(due_date, 'YYYY-MM-DD') AS due_date, created_at, updated_at`;

export type NewDefectRow = DefectFields & { id: number; project_id: number; reporter_id: number };

export const defectsRepository = {
  /**
   * The id the next defect will have, taken before its INSERT (its events carry it, so they
   * can be stored by the INSERT's own statement), and the project as this service knows it,
   * with whether the user is a member as far as it knows: one round trip.
   */
  async reserveId(
    db: Queryable,
    projectId: number,
    userId: number,
  ): Promise<{ id: number; known: (KnownProject & { member: boolean }) | undefined }> {
    const { rows } = await db.query<{ id: number; project: KnownProject | null; member: boolean }>(
      `SELECT nextval('defects.defects_id_seq')::int AS id,
         (SELECT row_to_json(p) FROM (SELECT id, name, owner_id, deleted_at FROM defects.known_projects WHERE id = $1) p) AS project,
         EXISTS (SELECT 1 FROM defects.project_members WHERE project_id = $1 AND user_id = $2 AND is_member) AS member`,
      [projectId, userId],
    );
    const { id, project, member } = rows[0];
    // row_to_json writes the timestamp as text.
    return {
      id,
      known: project
        ? { ...project, deleted_at: project.deleted_at && new Date(project.deleted_at), member }
        : undefined,
    };
  },

  /** The INSERT of a defect with a reserved id, as a statement to run (with its events). */
  insertStatement(defect: NewDefectRow) {
    return {
      sql: `INSERT INTO defects.defects (id, project_id, title, description, status, priority, reporter_id, assignee_id, due_date)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
      params: [
        defect.id,
        defect.project_id,
        defect.title,
        defect.description,
        defect.status,
        defect.priority,
        defect.reporter_id,
        defect.assignee_id,
        defect.due_date,
      ],
    };
  },

  async findById(db: Queryable, id: number, options: { forUpdate?: boolean } = {}): Promise<Defect | undefined> {
    const { rows } = await db.query<Defect>(
      `SELECT ${COLUMNS} FROM defects.defects WHERE id = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
      [id],
    );
    return rows[0];
  },

  async update(db: Queryable, id: number, fields: DefectFields): Promise<Defect> {
    const { rows } = await db.query<Defect>(
      `UPDATE defects.defects SET title = $2, description = $3, status = $4, priority = $5, assignee_id = $6,
         due_date = $7, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, fields.title, fields.description, fields.status, fields.priority, fields.assignee_id, fields.due_date],
    );
    return rows[0];
  },

  /** Deletes a project's defects; their ids, in order. */
  async deleteOfProject(db: Queryable, projectId: number): Promise<number[]> {
    const { rows } = await db.query<{ id: number }>('DELETE FROM defects.defects WHERE project_id = $1 RETURNING id', [
      projectId,
    ]);
    return rows.map((row) => row.id).sort((a, b) => a - b);
  },

  async delete(db: Queryable, id: number): Promise<void> {
    await db.query('DELETE FROM defects.defects WHERE id = $1', [id]);
  },

  /** A page of defects; `within`: only those of the projects the subquery (given its parameter's number) selects. */
  async list(
    db: Queryable,
    filter: DefectFilter,
    page: { limit: number; offset: number },
    within?: { projects: (parameter: number) => string; param: unknown },
  ) {
    const conditions: string[] = [];
    const params: unknown[] = [];
    for (const column of ['project_id', 'status', 'priority', 'assignee_id'] as const) {
      if (filter[column] === undefined) continue;
      params.push(filter[column]);
      conditions.push(`${column} = $${params.length}`);
    }
    if (within) {
      params.push(within.param);
      conditions.push(`project_id IN (${within.projects(params.length)})`);
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const [items, count] = await Promise.all([
      db.query<Defect>(
        `SELECT ${COLUMNS} FROM defects.defects ${where} ORDER BY id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, page.limit, page.offset],
      ),
      db.query<{ total: number }>(`SELECT count(*)::int AS total FROM defects.defects ${where}`, params),
    ]);
    return { items: items.rows, total: count.rows[0].total };
  },
};
