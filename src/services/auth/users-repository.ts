import type { Queryable } from '../../platform/db/database.ts';
import type { Role } from '../../platform/auth/access-token.ts';

export interface User {
  id: number;
  username: string;
  email: string;
  full_name: string | null;
  role: Role;
  /** A disabled user cannot sign in, and their tokens were revoked when they were disabled. */
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface NewUser {
  username: string;
  email: string;
  full_name?: string | null;
  password_hash: string;
  role: Role;
}

const USER_COLUMNS = 'id, username, email, full_name, role, disabled, created_at, updated_at';

/** A user and their current token generation, after a change that revoked their tokens. */
export type UserWithGeneration = User & { token_generation: number };

export const usersRepository = {
  async insert(db: Queryable, user: NewUser): Promise<User> {
    const { rows } = await db.query<User>(
      `INSERT INTO auth.users (username, email, full_name, password_hash, role)
       VALUES ($1, $2, $3, $4, $5) RETURNING ${USER_COLUMNS}`,
      [user.username, user.email, user.full_name ?? null, user.password_hash, user.role],
    );
    return rows[0];
  },

  async findById(db: Queryable, id: number): Promise<User | undefined> {
    const { rows } = await db.query<User>(`SELECT ${USER_COLUMNS} FROM auth.users WHERE id = $1`, [id]);
    return rows[0];
  },

  /**
   * By username, case-insensitively. The name is lowered here, as the sign-in throttle lowers
   * its key: lowered by the database instead, a name like `admİn` (dotted capital I) could find
   * `admin` while counting its failures under another key.
   */
  async findCredentials(db: Queryable, username: string) {
    const { rows } = await db.query<UserWithGeneration & { password_hash: string }>(
      `SELECT ${USER_COLUMNS}, password_hash, token_generation FROM auth.users WHERE lower(username) = $1`,
      [username.toLowerCase()],
    );
    return rows[0];
  },

  async findPasswordHash(db: Queryable, id: number): Promise<string | undefined> {
    const { rows } = await db.query<{ password_hash: string }>('SELECT password_hash FROM auth.users WHERE id = $1', [
      id,
    ]);
    return rows[0]?.password_hash;
  },

  /** A page of users; `within`: only the ids the subquery (given its parameter's number) selects, and that parameter. */
  async list(
    db: Queryable,
    page: { limit: number; offset: number },
    within?: { ids: (parameter: number) => string; param: unknown },
  ) {
    const where = within ? `WHERE id = $3 OR id IN (${within.ids(3)})` : '';
    const params = within ? [page.limit, page.offset, within.param] : [page.limit, page.offset];
    const { rows } = await db.query<User & { total: number }>(
      `SELECT ${USER_COLUMNS}, count(*) OVER ()::int AS total FROM auth.users ${where} ORDER BY id LIMIT $1 OFFSET $2`,
      params,
    );
    return {
      items: rows.map(({ total: _total, ...user }) => user),
      total: rows[0]?.total ?? (await countUsers(db, where.replaceAll('$3', '$1'), params.slice(2))),
    };
  },

  /** Also raises the token generation: tokens that carry the old role end. */
  async updateRole(db: Queryable, id: number, role: Role): Promise<UserWithGeneration | undefined> {
    const { rows } = await db.query<UserWithGeneration>(
      `UPDATE auth.users SET role = $2, token_generation = token_generation + 1, updated_at = now()
       WHERE id = $1 RETURNING ${USER_COLUMNS}, token_generation`,
      [id, role],
    );
    return rows[0];
  },

  /** Disabling also raises the token generation: every token of the user ends. */
  async setDisabled(db: Queryable, id: number, disabled: boolean): Promise<UserWithGeneration | undefined> {
    const { rows } = await db.query<UserWithGeneration>(
      `UPDATE auth.users SET disabled = $2, updated_at = now(),
         token_generation = token_generation + CASE WHEN $2 THEN 1 ELSE 0 END
       WHERE id = $1 RETURNING ${USER_COLUMNS}, token_generation`,
      [id, disabled],
    );
    return rows[0];
  },

  /** Also raises the token generation: tokens issued under the old password end. */
  async updatePassword(db: Queryable, id: number, passwordHash: string): Promise<UserWithGeneration | undefined> {
    const { rows } = await db.query<UserWithGeneration>(
      `UPDATE auth.users SET password_hash = $2, token_generation = token_generation + 1, updated_at = now()
       WHERE id = $1 RETURNING ${USER_COLUMNS}, token_generation`,
      [id, passwordHash],
    );
    return rows[0];
  },
};

async function countUsers(db: Queryable, where: string, params: unknown[]): Promise<number> {
  const { rows } = await db.query<{ count: number }>(`SELECT count(*)::int AS count FROM auth.users ${where}`, params);
  return rows[0].count;
}
