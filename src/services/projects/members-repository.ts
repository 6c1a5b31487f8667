import type { Queryable } from '../../platform/db/database.ts';

export interface Member {
  project_id: number;
  user_id: number;
  username: string | null;
  full_name: string | null;
  is_owner: boolean;
  added_by: number | null;
  added_at: Date;
}

const MEMBER_COLUMNS = `m.project_id, m.user_id, u.username, u.full_name, (m.user_id = p.owner_id) AS is_owner,
  m.added_by, m.added_at`;
const MEMBER_FROM = `projects.members m JOIN projects.projects p ON p.id = m.project_id
  LEFT JOIN projects.known_users u ON u.id = m.user_id`;

export interface KnownUser {
  id: number;
  username: string;
  full_name: string | null;
}

export const membersRepository = {
  /** True when it added the member; false when the user was one already. */
  async insert(db: Queryable, member: { project_id: number; user_id: number; added_by: number | null }) {
    const { rows } = await db.query(
      `INSERT INTO projects.members (project_id, user_id, added_by) VALUES ($1, $2, $3)
       ON CONFLICT DO NOTHING RETURNING user_id`,
      [member.project_id, member.user_id, member.added_by],
    );
    return rows.length > 0;
  },

  /** True when it removed the member; false when the user was not one. */
  async delete(db: Queryable, projectId: number, userId: number): Promise<boolean> {
    const { rows } = await db.query(
      'DELETE FROM projects.members WHERE project_id = $1 AND user_id = $2 RETURNING user_id',
      [projectId, userId],
    );
    return rows.length > 0;
  },

  async isMember(db: Queryable, projectId: number, userId: number): Promise<boolean> {
    const { rows } = await db.query('SELECT 1 FROM projects.members WHERE project_id = $1 AND user_id = $2', [
      projectId,
      userId,
    ]);
    return rows.length > 0;
  },

  async find(db: Queryable, projectId: number, userId: number): Promise<Member | undefined> {
    const { rows } = await db.query<Member>(
      `SELECT ${MEMBER_COLUMNS} FROM ${MEMBER_FROM} WHERE m.project_id = $1 AND m.user_id = $2`,
      [projectId, userId],
    );
    return rows[0];
  },

  async list(db: Queryable, projectId: number, page: { limit: number; offset: number }) {
    const [items, count] = await Promise.all([
      db.query<Member>(
        `SELECT ${MEMBER_COLUMNS} FROM ${MEMBER_FROM} WHERE m.project_id = $1 ORDER BY m.user_id LIMIT $2 OFFSET $3`,
        [projectId, page.limit, page.offset],
      ),
      db.query<{ total: number }>('SELECT count(*)::int AS total FROM projects.members WHERE project_id = $1', [
        projectId,
      ]),
    ]);
    return { items: items.rows, total: count.rows[0].total };
  },

  async isKnownUser(db: Queryable, userId: number): Promise<boolean> {
    const { rows } = await db.query('SELECT 1 FROM projects.known_users WHERE id = $1', [userId]);
    return rows.length > 0;
  },

  /** From user.registered; a second delivery changes nothing. */
  async rememberUser(db: Queryable, user: KnownUser): Promise<void> {
    await db.query(
      'INSERT INTO projects.known_users (id, username, full_name) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING',
      [user.id, user.username, user.full_name],
    );
  },
};
