import type { AuthenticatedUser } from '../../platform/auth/access-token.ts';
import { eventContextOf, type Actor } from '../../platform/http/actor.ts';
import type { Database, Queryable } from '../../platform/db/database.ts';
import type { Outbox } from '../../platform/events/outbox.ts';
import { memberNotFound, ownerNotRemovable, projectNotFound, unknownUser } from './errors.ts';
import { membersRepository, type Member } from './members-repository.ts';
import { assertMayChangeProject, assertMayCreateProject } from './project-permissions.ts';
import { projectsRepository, type Project, type ProjectFields } from './projects-repository.ts';

export type ProjectsService = ReturnType<typeof createProjectsService>;

type Page = { limit: number; offset: number };

/** Projects, their members and the project.* events: every change commits together with its event. */
export function createProjectsService(deps: { db: Database; outbox: Outbox }) {
  const { db, outbox } = deps;

  /** The project if the user may see it (a member, or an admin); else undefined, as if there were none. */
  const findVisible = async (
    q: Queryable,
    id: number,
    user: AuthenticatedUser,
    options: { forUpdate?: boolean } = {},
  ): Promise<Project | undefined> => {
    const project = await projectsRepository.findById(q, id, options);
    if (!project) return undefined;
    if (user.role === 'admin' || (await membersRepository.isMember(q, id, user.id))) return project;
    return undefined;
  };

  /** The visible project, or 404: a project the caller may not see does not exist for them. */
  const getVisible = async (q: Queryable, id: number, user: AuthenticatedUser, options?: { forUpdate?: boolean }) => {
    const project = await findVisible(q, id, user, options);
    if (!project) throw projectNotFound(id);
    return project;
  };

  const change = (actor: Actor, id: number, edit: (project: Project) => ProjectFields) =>
    outbox.transaction(eventContextOf(actor), async (tx, events) => {
      const project = await getVisible(tx, id, actor.user, { forUpdate: true });
      assertMayChangeProject(actor.user, project);
      const fields = edit(project);
      if (fields.name === project.name && fields.description === project.description) return project;
      const updated = await projectsRepository.update(tx, id, fields);
      events.add('project.updated', { project_id: id, name: updated.name, updated_by: actor.user.id });
      return updated;
    });

  return {
    create: (actor: Actor, fields: { name: string; description?: string | null }) => {
      assertMayCreateProject(actor.user);
      return outbox.transaction(eventContextOf(actor), async (tx, events) => {
        const project = await projectsRepository.insert(tx, {
          name: fields.name,
          description: fields.description ?? null,
          owner_id: actor.user.id,
        });
        // The owner is a member; project.created says so (no member_added of its own).
        await membersRepository.insert(tx, { project_id: project.id, user_id: project.owner_id, added_by: null });
        events.add('project.created', { project_id: project.id, name: project.name, owner_id: project.owner_id });
        return project;
      });
    },

    get: (actor: Actor, id: number): Promise<Project> => getVisible(db, id, actor.user),

    /** For modules in the same process (no HTTP, no error): the project if the user may see it. */
    findVisible: (id: number, user: AuthenticatedUser): Promise<Project | undefined> => findVisible(db, id, user),

    /** For modules in the same process: whether the user is a member of the project. */
    isMember: (projectId: number, userId: number): Promise<boolean> =>
      membersRepository.isMember(db, projectId, userId),

    /** Admins list every project; anyone else the projects they are a member of. */
    list: (actor: Actor, filter: { owner_id?: number } & Page) =>
      projectsRepository
        .list(db, { ...filter, member_id: actor.user.role === 'admin' ? undefined : actor.user.id })
        .then((page) => ({ ...page, limit: filter.limit, offset: filter.offset })),

    replace: (actor: Actor, id: number, fields: { name: string; description?: string | null }) =>
      change(actor, id, (project) => ({
        name: fields.name,
        description: fields.description === undefined ? project.description : fields.description,
      })),

    patch: (actor: Actor, id: number, fields: Partial<ProjectFields>) =>
      change(actor, id, (project) => ({
        name: fields.name ?? project.name,
        description: fields.description === undefined ? project.description : fields.description,
      })),

    remove: (actor: Actor, id: number) =>
      outbox.transaction(eventContextOf(actor), async (tx, events) => {
        const project = await getVisible(tx, id, actor.user, { forUpdate: true });
        assertMayChangeProject(actor.user, project);
        await projectsRepository.delete(tx, id);
        events.add('project.deleted', { project_id: id, deleted_by: actor.user.id });
      }),

    async listMembers(actor: Actor, projectId: number, page: Page) {
      await getVisible(db, projectId, actor.user);
      return { ...(await membersRepository.list(db, projectId, page)), ...page };
    },

    async getMember(actor: Actor, projectId: number, userId: number): Promise<Member> {
      await getVisible(db, projectId, actor.user);
      const member = await membersRepository.find(db, projectId, userId);
      if (!member) throw memberNotFound(projectId, userId);
      return member;
    },

    /** Adds a member; adding one again changes nothing and publishes nothing (`added` false). */
    addMember: (actor: Actor, projectId: number, userId: number) =>
      outbox.transaction(eventContextOf(actor), async (tx, events) => {
        const project = await getVisible(tx, projectId, actor.user, { forUpdate: true });
        assertMayChangeProject(actor.user, project, 'add or remove its members');
        if (!(await membersRepository.isKnownUser(tx, userId))) throw unknownUser(userId);
        const added = await membersRepository.insert(tx, {
          project_id: projectId,
          user_id: userId,
          added_by: actor.user.id,
        });
        if (added)
          events.add('project.member_added', { project_id: projectId, user_id: userId, added_by: actor.user.id });
        return { added, member: (await membersRepository.find(tx, projectId, userId))! };
      }),

    removeMember: (actor: Actor, projectId: number, userId: number) =>
      outbox.transaction(eventContextOf(actor), async (tx, events) => {
        const project = await getVisible(tx, projectId, actor.user, { forUpdate: true });
        assertMayChangeProject(actor.user, project, 'add or remove its members');
        if (userId === project.owner_id) throw ownerNotRemovable(projectId, userId);
        if (!(await membersRepository.delete(tx, projectId, userId))) throw memberNotFound(projectId, userId);
        events.add('project.member_removed', { project_id: projectId, user_id: userId, removed_by: actor.user.id });
      }),

    /** The users there are, from user.registered: a member must be one of them. */
    rememberUser: (tx: Queryable, user: { id: number; username: string; full_name: string | null }) =>
      membersRepository.rememberUser(tx, user),
  };
}
