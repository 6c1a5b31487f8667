import type { Queryable } from '../platform/db/database.ts';
import type { Migration } from '../platform/db/migrate.ts';
import type { EventHandler } from '../platform/events/event-consumer.ts';

/**
 * Inserts into `target` the memberships that data from before membership existed implies:
 * each project's owner, and the reporters and assignees of its defects, so that nobody loses
 * what they could see or do before. It reads the projects and defects services' tables, which
 * a migration may do only here (decision 008), and only those that exist (`to_regclass`): on
 * a fresh database, or when a service's schema is not there yet, there is nothing to carry over.
 * `columns` and `values` add the target's own columns (leading comma).
 */
export function insertOldMemberships(target: string, columns = '', values = ''): string {
  return `
    DO $$ BEGIN
      IF to_regclass('projects.projects') IS NULL THEN RETURN; END IF;
      INSERT INTO ${target} (project_id, user_id${columns})
        SELECT id, owner_id${values} FROM projects.projects
        ON CONFLICT DO NOTHING;
      IF to_regclass('defects.defects') IS NULL THEN RETURN; END IF;
      INSERT INTO ${target} (project_id, user_id${columns})
        SELECT DISTINCT d.project_id, party.user_id${values}
        FROM defects.defects d
        JOIN projects.projects p ON p.id = d.project_id
        CROSS JOIN LATERAL (VALUES (d.reporter_id), (d.assignee_id)) AS party(user_id)
        WHERE party.user_id IS NOT NULL
        ON CONFLICT DO NOTHING;
    END $$;`;
}

/**
 * A service's copy of project membership (the projects service owns it), fed by project.*
 * events. The handlers are safe in any order, as a retried event may come after later ones:
 * each (project, user) row keeps the timestamp of the event that set it and an older event
 * does not overwrite it; a deleted project's tombstone keeps a late `member_added` from
 * bringing it back.
 */
export function createMembershipCopy(schema: 'auth' | 'defects') {
  const members = `${schema}.project_members`;
  const deleted = `${schema}.deleted_projects`;

  const migration: Migration = {
    id: `${schema}/project-members-1`,
    sql: `
      CREATE TABLE ${members} (
        project_id integer NOT NULL,
        user_id integer NOT NULL,
        is_member boolean NOT NULL,
        -- The timestamp of the event that set the row; -infinity for rows carried over.
        as_of timestamp NOT NULL,
        PRIMARY KEY (project_id, user_id)
      );
      CREATE INDEX project_members_user ON ${members} (user_id) WHERE is_member;
      CREATE TABLE ${deleted} (project_id integer PRIMARY KEY);
      ${insertOldMemberships(members, ', is_member, as_of', ", true, '-infinity'::timestamp")}
    `,
  };

  const setMembership = async (tx: Queryable, projectId: number, userId: number, isMember: boolean, asOf: string) => {
    await tx.query(
      `INSERT INTO ${members} (project_id, user_id, is_member, as_of)
       SELECT $1, $2, $3, $4::timestamp WHERE NOT EXISTS (SELECT 1 FROM ${deleted} WHERE project_id = $1)
       ON CONFLICT (project_id, user_id) DO UPDATE SET is_member = excluded.is_member, as_of = excluded.as_of
       WHERE ${members}.as_of <= excluded.as_of`,
      [projectId, userId, isMember, asOf],
    );
  };

  const handlers: {
    'project.created': EventHandler<'project.created'>;
    'project.member_added': EventHandler<'project.member_added'>;
    'project.member_removed': EventHandler<'project.member_removed'>;
    'project.deleted': EventHandler<'project.deleted'>;
  } = {
    'project.created': (tx, event) =>
      setMembership(tx, event.data.project_id, event.data.owner_id, true, event.timestamp),
    'project.member_added': (tx, event) =>
      setMembership(tx, event.data.project_id, event.data.user_id, true, event.timestamp),
    'project.member_removed': (tx, event) =>
      setMembership(tx, event.data.project_id, event.data.user_id, false, event.timestamp),
    'project.deleted': async (tx, event) => {
      await tx.query(`INSERT INTO ${deleted} (project_id) VALUES ($1) ON CONFLICT DO NOTHING`, [event.data.project_id]);
      await tx.query(`DELETE FROM ${members} WHERE project_id = $1`, [event.data.project_id]);
    },
  };

  return {
    migration,
    handlers,

    async isMember(db: Queryable, projectId: number, userId: number): Promise<boolean> {
      const { rows } = await db.query(`SELECT 1 FROM ${members} WHERE project_id = $1 AND user_id = $2 AND is_member`, [
        projectId,
        userId,
      ]);
      return rows.length > 0;
    },

    /** A subquery: the ids of the projects the user given as parameter `$n` is a member of. */
    projectsOf: (parameter: number) => `SELECT project_id FROM ${members} WHERE user_id = $${parameter} AND is_member`,

    /** A subquery: the users sharing a project with the user given as parameter `$n`. */
    usersSharingWith: (parameter: number) =>
      `SELECT other.user_id FROM ${members} mine
       JOIN ${members} other ON other.project_id = mine.project_id AND other.is_member
       WHERE mine.user_id = $${parameter} AND mine.is_member`,
  };
}

export type MembershipCopy = ReturnType<typeof createMembershipCopy>;
