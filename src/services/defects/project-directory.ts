import { request } from 'undici';
import type { Database, Queryable } from '../../platform/db/database.ts';
import type { Actor } from '../../platform/http/actor.ts';
import type { EventHandlers } from '../../platform/events/event-consumer.ts';
import { upstreamUnavailable } from '../../platform/errors/common-errors.ts';

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
 * Where the defects service asks, on the caller's behalf, about a project it has not heard
 * of yet: the projects API when it runs alone (`projectLookupOverHttp`), the projects module
 * itself when both run in one process. Undefined when there is no such project.
 */
export type ProjectLookup = (id: number, actor: Actor) => Promise<ProjectSummary | undefined>;

export function projectLookupOverHttp(projectsUrl: string): ProjectLookup {
  return async (id, actor) => {
    const response = await request(`${projectsUrl}/v1/projects/${id}`, {
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
    const body = (await response.body.json().catch(() => undefined)) as ProjectSummary | undefined;
    if (response.statusCode === 404) return undefined;
    if (response.statusCode !== 200 || !body) {
      throw upstreamUnavailable(`The projects service answered ${response.statusCode}`);
    }
    return body;
  };
}

/**
 * What the defects service knows of projects without reading the projects service's
 * tables: a local copy fed by project.* events, and a lookup for a project created so
 * recently that its event has not arrived yet.
 */
export function createProjectDirectory(deps: { db: Database; lookupProject: ProjectLookup }) {
  const { db } = deps;

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
    known: KnownProject | undefined,
    id: number,
    actor: Actor,
  ): Promise<KnownProject | undefined> => {
    if (known) return known.deleted_at ? undefined : known;
    const fetched = await deps.lookupProject(id, actor);
    if (!fetched) return undefined;
    await remember(db, fetched);
    return { id: fetched.id, name: fetched.name, owner_id: fetched.owner_id, deleted_at: null };
  };

  return {
    find,

    /**
     * The live project, or undefined when it does not exist or was deleted, from a lookup of
     * the local copy already made (read along with something else). Call outside a transaction.
     */
    resolveFrom,

    /** Consumer handlers keeping the copy current; each is safe in any order. */
    handlers: {
      'project.created': (tx, event) =>
        remember(tx, { id: event.data.project_id, name: event.data.name, owner_id: event.data.owner_id }).then(
          () => undefined,
        ),
      'project.updated': (tx, event) =>
        tx
          .query('UPDATE defects.known_projects SET name = $2 WHERE id = $1', [event.data.project_id, event.data.name])
          .then(() => undefined),
      'project.deleted': (tx, event) =>
        tx
          .query(
            `INSERT INTO defects.known_projects (id, name, owner_id, deleted_at) VALUES ($1, '', 0, now())
             ON CONFLICT (id) DO UPDATE SET deleted_at = coalesce(defects.known_projects.deleted_at, now())`,
            [event.data.project_id],
          )
          .then(() => undefined),
    } satisfies EventHandlers,
  };
}

export type ProjectDirectory = ReturnType<typeof createProjectDirectory>;
