import type { Queryable } from '../../platform/db/database.ts';

export interface Project {
  id: number;
  name: string;
  description: string | null;
  owner_id: number;
  created_at: Date;
  updated_at: Date;
}

export interface ProjectFields {
  name: string;
  description: string | null;
}

const COLUMNS = 'id, name, description, owner_id, created_at, updated_at';

export const projectsRepository = {
  async insert(db: Queryable, fields: ProjectFields & { owner_id: number }): Promise<Project> {
    const { rows } = await db.query<Project>(
      `INSERT INTO projects.projects (name, description, owner_id) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
      [fields.name, fields.description, fields.owner_id],
    );
    return rows[0];
  },

  async findById(db: Queryable, id: number, options: { forUpdate?: boolean } = {}): Promise<Project | undefined> {
    const { rows } = await db.query<Project>(
      `SELECT ${COLUMNS} FROM projects.projects WHERE id = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
      [id],
    );
    return rows[0];
  },

  async update(db: Queryable, id: number, fields: ProjectFields): Promise<Project> {
    const { rows } = await db.query<Project>(
      `UPDATE projects.projects SET name = $2, description = $3, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, fields.name, fields.description],
    );
    return rows[0];
  },

  async delete(db: Queryable, id: number): Promise<void> {
    await db.query('DELETE FROM projects.projects WHERE id = $1', [id]);
  },

  /** A page of projects; `member_id`: only those that user is a member of. */
  async list(db: Queryable, filter: { owner_id?: number; member_id?: number; limit: number; offset: number }) {
    const conditions: string[] = [];
    const params: unknown[] = [];
    if (filter.owner_id !== undefined) {
      params.push(filter.owner_id);
      conditions.push(`owner_id = $${params.length}`);
    }
    if (filter.member_id !== undefined) {
      params.push(filter.member_id);
      conditions.push(`id IN (SELECT project_id FROM projects.members WHERE user_id = $${params.length})`);
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const [page, count] = await Promise.all([
      db.query<Project>(
        `SELECT ${COLUMNS} FROM projects.projects ${where} ORDER BY id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, filter.limit, filter.offset],
      ),
      db.query<{ total: number }>(`SELECT count(*)::int AS total FROM projects.projects ${where}`, params),
    ]);
    return { items: page.rows, total: count.rows[0].total };
  },
};
