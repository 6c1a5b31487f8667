import { eventContextOf, type Actor } from '../../platform/http/actor.ts';
import type { Database } from '../../platform/db/database.ts';
import type { Outbox } from '../../platform/events/outbox.ts';
import { projectNotFound } from './errors.ts';
import { assertMayChangeProject, assertMayCreateProject } from './project-permissions.ts';
import { projectsRepository, type Project, type ProjectFields } from './projects-repository.ts';

export type ProjectsService = ReturnType<typeof createProjectsService>;

/** Projects and the project.* events: every change commits together with its event. */
export function createProjectsService(deps: { db: Database; outbox: Outbox }) {
  const { db, outbox } = deps;

  const change = (actor: Actor, id: number, edit: (project: Project) => ProjectFields) =>
    outbox.transaction(eventContextOf(actor), async (tx, events) => {
      const project = await projectsRepository.findById(tx, id, { forUpdate: true });
      if (!project) throw projectNotFound(id);
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
        events.add('project.created', { project_id: project.id, name: project.name, owner_id: project.owner_id });
        return project;
      });
    },

    async get(id: number): Promise<Project> {
      const project = await projectsRepository.findById(db, id);
      if (!project) throw projectNotFound(id);
      return project;
    },

    /** The project, or undefined: for modules in the same process (no HTTP, no error). */
    find: (id: number): Promise<Project | undefined> => projectsRepository.findById(db, id),

    list: (filter: { owner_id?: number; limit: number; offset: number }) =>
      projectsRepository.list(db, filter).then((page) => ({ ...page, limit: filter.limit, offset: filter.offset })),

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
        const project = await projectsRepository.findById(tx, id, { forUpdate: true });
        if (!project) throw projectNotFound(id);
        assertMayChangeProject(actor.user, project);
        await projectsRepository.delete(tx, id);
        events.add('project.deleted', { project_id: id, deleted_by: actor.user.id });
      }),
  };
}
