import { request } from 'undici';
import type { Database, Queryable } from '../../platform/db/database.ts';
import type { Actor } from '../../platform/http/actor.ts';
import type { EventHandlers } from '../../platform/events/event-consumer.ts';
import { upstreamUnavailable } from '../../platform/errors/common-errors.ts';
import { createMembershipCopy } from '../membership-copy.ts';

export interface KnownProject {
  id: number;
  name: string;
  owner_id: number;
  deleted_at: Date | null;
}

/** A project as the defects service needs it. */
export interface ProjectSummary {
  id: number;
  name: string;
  owner_id: number;
}

/**
 * Where the defects service asks, on the caller's behalf, about what it has not heard of yet:
 * the projects API when it runs alone (`projectLookupOverHttp`), the projects module itself
 * when both run in one process. `project`: undefined when there is no such project or the
 * caller may not see it (not a member); `isMember`: whether a user is a member of a project
 * the caller may see.
 */
export interface ProjectLookup {
  project(id: number, actor: Actor): Promise<ProjectSummary | undefined>;
  isMember(projectId: number, userId: number, actor: Actor): Promise<boolean>;
}

export function projectLookupOverHttp(projectsUrl: string): ProjectLookup {
  const get = async <Body>(path: string, actor: Actor): Promise<Body | undefined> => {
    const response = await request(`${projectsUrl}${path}`, {
      // On the caller's behalf, and followed as part of the caller's request.
      headers: {
        authorization: actor.authorization,
        'x-request-id': actor.requestId,
        traceparent: actor.traceparent,
        accept: 'application/json',
      },
      headersTimeout: 5_000,
      bodyTimeout: 5_000,
    }).catch((error: Error) => {
      throw upstreamUnavailable(`The projects service is unreachable: ${error.message}`);
    });
    const body = (await response.body.json().catch(() => undefined)) as Body | undefined;
    if (response.statusCode === 404) return undefined;
    if (response.statusCode !== 200 || !body) {
      throw upstreamUnavailable(`The projects service answered ${response.statusCode}`);
    }
    return body;
  };
  return {
    project: (id, actor) => get<ProjectSummary>(`/v1/projects/${id}`, actor),
    isMember: async (projectId, userId, actor) =>
      (await get<object>(`/v1/projects/${projectId}/members/${userId}`, actor)) !== undefined,
  };
}

/**
 * What the defects service knows of projects and their members without reading the projects
 * service's tables: local copies fed by project.* events, and a lookup, on the caller's
 * behalf, for what is so recent that its event has not arrived yet (decisions 002 and 008).
 */
export function createProjectDirectory(deps: { db: Database; lookup: ProjectLookup }) {
  const { db, lookup } = deps;
  const members = createMembershipCopy('defects');

  const remember = (tx: Queryable, project: ProjectSummary) =>
    tx.query(
      `INSERT INTO defects.known_projects (id, name, owner_id) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
      [project.id, project.name, project.owner_id],
    );

  const find = async (tx: Queryable, id: number): Promise<KnownProject | undefined> => {
    const { rows } = await tx.query<KnownProject>(
      'SELECT id, name, owner_id, deleted_at FROM defects.known_projects WHERE id = $1',
      [id],
    );
    return rows[0];
  };

  const resolveFrom = async (
    known: (KnownProject & { member: boolean }) | undefined,
    id: number,
    actor: Actor,
  ): Promise<KnownProject | undefined> => {
    if (known?.deleted_at) return undefined;
    if (known && (actor.user.role === 'admin' || known.member)) return known;
    // Not heard of, or the caller's membership not heard of: the projects service knows.
    const fetched = await lookup.project(id, actor);
    if (!fetched) return undefined;
    if (!known) await remember(db, fetched);
    return { id: fetched.id, name: fetched.name, owner_id: fetched.owner_id, deleted_at: null };
  };

  /** Whether the caller may see the project's defects: an admin, or a member. */
  const canSee = async (projectId: number, actor: Actor): Promise<boolean> =>
    actor.user.role === 'admin' ||
    (await members.isMember(db, projectId, actor.user.id)) ||
    (await lookup.project(projectId, actor)) !== undefined;

  return {
    find,

    /**
     * The live project, if the caller may see it (a member, or an admin), or undefined when
     * it does not exist, was deleted or is not theirs to see, from a lookup of the local copy
     * already made (read along with something else). Call outside a transaction.
     */
    resolveFrom,

    canSee,

    /** Whether the user is a member of the project (a project the caller may see). */
    isMember: async (projectId: number, userId: number, actor: Actor): Promise<boolean> =>
      (await members.isMember(db, projectId, userId)) || lookup.isMember(projectId, userId, actor),

    /** A subquery: the ids of the projects of the user given as parameter `$n`. */
    projectsOf: members.projectsOf,

    /** Consumer handlers keeping the copies current; each is safe in any order. */
    handlers: {
      'project.created': async (tx, event, context) => {
        await remember(tx, { id: event.data.project_id, name: event.data.name, owner_id: event.data.owner_id });
        await members.handlers['project.created'](tx, event, context);
      },
      'project.member_added': members.handlers['project.member_added'],
      'project.member_removed': members.handlers['project.member_removed'],
      'project.updated': (tx, event) =>
        tx
          .query('UPDATE defects.known_projects SET name = $2 WHERE id = $1', [event.data.project_id, event.data.name])
          .then(() => undefined),
      'project.deleted': async (tx, event, context) => {
        await tx.query(
          `INSERT INTO defects.known_projects (id, name, owner_id, deleted_at) VALUES ($1, '', 0, now())
           ON CONFLICT (id) DO UPDATE SET deleted_at = coalesce(defects.known_projects.deleted_at, now())`,
          [event.data.project_id],
        );
        await members.handlers['project.deleted'](tx, event, context);
      },
    } satisfies EventHandlers,
  };
}

export type ProjectDirectory = ReturnType<typeof createProjectDirectory>;
