import { contractViolation, type ContractEvent } from '../contracts/events.ts';
import type { Queryable } from '../platform/db/database.ts';
import type { Migration } from '../platform/db/migrate.ts';
import type { EventEnvelope } from '../platform/events/envelope.ts';
import type { EventHandler } from '../platform/events/event-consumer.ts';

const MEMBERSHIP_EVENTS = [
  'project.created',
  'project.member_added',
  'project.member_removed',
  'project.deleted',
] as const;
type MembershipEvent = (typeof MEMBERSHIP_EVENTS)[number];
type MembershipChange = { [Type in MembershipEvent]: ContractEvent<Type> }[MembershipEvent];

function isMembershipEvent(eventType: string): eventType is MembershipEvent {
  return (MEMBERSHIP_EVENTS as readonly string[]).includes(eventType);
}

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
export function createMembershipCopy(schema: 'auth' | 'defects' | 'event_log') {
  const members = `${schema}.project_members`;
  const deleted = `${schema}.deleted_projects`;

  /** The copy's tables; a copy that existed before in another shape reshapes its table into this one. */
  const tablesSql = `
      CREATE TABLE ${members} (
        project_id integer NOT NULL,
        user_id integer NOT NULL,
        is_member boolean NOT NULL,
        -- The timestamp of the event that set the row; -infinity for rows carried over.
        as_of timestamp NOT NULL,
        PRIMARY KEY (project_id, user_id)
      );
      CREATE INDEX project_members_user ON ${members} (user_id) WHERE is_member;
      CREATE TABLE ${deleted} (project_id integer PRIMARY KEY);`;

  const migration: Migration = {
    id: `${schema}/project-members-1`,
    sql: `
      ${tablesSql}
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

  /** One membership event, whatever its order among the others. */
  const change = async (tx: Queryable, event: MembershipChange): Promise<void> => {
    switch (event.event_type) {
      case 'project.created':
        return setMembership(tx, event.data.project_id, event.data.owner_id, true, event.timestamp);
      case 'project.member_added':
        return setMembership(tx, event.data.project_id, event.data.user_id, true, event.timestamp);
      case 'project.member_removed':
        return setMembership(tx, event.data.project_id, event.data.user_id, false, event.timestamp);
      case 'project.deleted':
        await tx.query(`INSERT INTO ${deleted} (project_id) VALUES ($1) ON CONFLICT DO NOTHING`, [
          event.data.project_id,
        ]);
        await tx.query(`DELETE FROM ${members} WHERE project_id = $1`, [event.data.project_id]);
    }
  };

  const handlers: { [Type in MembershipEvent]: EventHandler<Type> } = {
    'project.created': (tx, event) => change(tx, event),
    'project.member_added': (tx, event) => change(tx, event),
    'project.member_removed': (tx, event) => change(tx, event),
    'project.deleted': (tx, event) => change(tx, event),
  };

  return {
    migration,
    tablesSql,
    handlers,

    /**
     * For a consumer that takes every event (the event log's recorder): applies the event if it
     * is a membership event whose data matches the contract, and ignores any other.
     */
    async apply(tx: Queryable, event: EventEnvelope): Promise<void> {
      const type = event.event_type;
      if (!isMembershipEvent(type) || contractViolation(type, event.data, 'consume') !== undefined) return;
      await change(tx, event as MembershipChange);
    },

    async isMember(db: Queryable, projectId: number, userId: number): Promise<boolean> {
      const { rows } = await db.query(`SELECT 1 FROM ${members} WHERE project_id = $1 AND user_id = $2 AND is_member`, [
        projectId,
        userId,
      ]);
      return rows.length > 0;
    },

    /** For each of the users, the projects among `projectIds` they are a member of. */
    async membershipsAmong(db: Queryable, userIds: number[], projectIds: number[]): Promise<Map<number, Set<number>>> {
      const memberships = new Map<number, Set<number>>();
      if (userIds.length === 0 || projectIds.length === 0) return memberships;
      const { rows } = await db.query<{ user_id: number; project_id: number }>(
        `SELECT user_id, project_id FROM ${members}
         WHERE user_id = ANY($1::int[]) AND project_id = ANY($2::int[]) AND is_member`,
        [userIds, projectIds],
      );
      for (const row of rows) {
        const projects = memberships.get(row.user_id) ?? new Set<number>();
        projects.add(row.project_id);
        memberships.set(row.user_id, projects);
      }
      return memberships;
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
