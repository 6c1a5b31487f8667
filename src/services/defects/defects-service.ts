import { eventContextOf, type Actor } from '../../platform/http/actor.ts';
import type { Database, Queryable } from '../../platform/db/database.ts';
import type { EventContext, Outbox, PendingEvents } from '../../platform/events/outbox.ts';
import { assertMayChange, assertMayDelete, assertMayReport } from './defect-permissions.ts';
import {
  assertInitialStatus,
  assertTransitionAllowed,
  DEFAULT_PRIORITY,
  INITIAL_STATUS,
  type DefectPriority,
  type DefectStatus,
} from './defect-workflow.ts';
import {
  defectsRepository,
  type Defect,
  type DefectFields,
  type DefectFilter,
  type NewDefectRow,
} from './defects-repository.ts';
import { assigneeNotMember, defectNotFound, projectNotFound } from './errors.ts';
import type { ProjectDirectory } from './project-directory.ts';

export interface NewDefect {
  project_id: number;
  title: string;
  description?: string | null;
  status?: DefectStatus;
  priority?: DefectPriority;
  assignee_id?: number | null;
  due_date?: string | null;
}

export type DefectsService = ReturnType<typeof createDefectsService>;

export function createDefectsService(deps: { db: Database; outbox: Outbox; projects: ProjectDirectory }) {
  const { db, outbox, projects } = deps;

  /** The defect, if the caller may see it (a member of its project, or an admin); else 404, as if there were none. */
  const getVisible = async (actor: Actor, id: number): Promise<Defect> => {
    const defect = await defectsRepository.findById(db, id);
    if (!defect || !(await projects.canSee(defect.project_id, actor))) throw defectNotFound(id);
    return defect;
  };

  /** An assignee must be a member of the defect's project. */
  const assertAssignable = async (projectId: number, assigneeId: number, actor: Actor) => {
    if (!(await projects.isMember(projectId, assigneeId, actor))) throw assigneeNotMember(assigneeId, projectId);
  };

  /**
   * Applies an edit under the row lock; publishes status_changed then updated, as the seed does.
   * Visibility and a new assignee's membership are checked before the transaction: they may
   * have to be asked of the projects service, over HTTP or, embedded, on this process's one
   * database connection, which the transaction would be holding.
   */
  const change = async (
    actor: Actor,
    id: number,
    edit: (defect: Defect) => DefectFields,
    assigneeId?: number | null,
  ) => {
    const current = await getVisible(actor, id);
    if (assigneeId != null && assigneeId !== current.assignee_id) {
      assertMayChange(actor.user, current, (await projects.find(db, current.project_id))?.owner_id);
      await assertAssignable(current.project_id, assigneeId, actor);
    }
    return outbox.transaction(eventContextOf(actor), async (tx, events) => {
      const defect = await defectsRepository.findById(tx, id, { forUpdate: true });
      if (!defect) throw defectNotFound(id);
      const project = await projects.find(tx, defect.project_id);
      assertMayChange(actor.user, defect, project?.owner_id);
      const fields = edit(defect);
      assertTransitionAllowed(defect.status, fields.status);
      if (!differs(defect, fields)) return defect;
      const updated = await defectsRepository.update(tx, id, fields);
      publishChange(events, defect, updated, actor.user.id);
      return updated;
    });
  };

  return {
    async create(actor: Actor, input: NewDefect): Promise<Defect> {
      // An observer is refused either way: 404 for a project they may not see, else 403.
      if (actor.user.role === 'observer' && !(await projects.canSee(input.project_id, actor)))
        throw projectNotFound(input.project_id);
      assertMayReport(actor.user);
      const status = input.status ?? INITIAL_STATUS;
      assertInitialStatus(status);
      const { id, known } = await defectsRepository.reserveId(db, input.project_id, actor.user.id);
      const project = await projects.resolveFrom(known, input.project_id, actor);
      if (!project) throw projectNotFound(input.project_id);
      if (input.assignee_id != null) await assertAssignable(project.id, input.assignee_id, actor);
      const defect: NewDefectRow = {
        id,
        project_id: project.id,
        title: input.title,
        description: input.description ?? null,
        status,
        priority: input.priority ?? DEFAULT_PRIORITY,
        reporter_id: actor.user.id,
        assignee_id: input.assignee_id ?? null,
        due_date: input.due_date ?? null,
      };
      const [created] = await outbox.statement<Defect>(
        eventContextOf(actor),
        defectsRepository.insertStatement(defect),
        (events) => {
          events.add('defect.created', {
            defect_id: defect.id,
            title: defect.title,
            status: defect.status,
            priority: defect.priority,
            project_id: defect.project_id,
            reporter_id: defect.reporter_id,
          });
          if (defect.assignee_id !== null)
            publishAssignment(events, { id: defect.id, assignee_id: defect.assignee_id }, actor.user.id);
        },
      );
      return created;
    },

    get: getVisible,

    /** Admins list every defect; anyone else those of the projects they are a member of. */
    async list(actor: Actor, filter: DefectFilter, page: { limit: number; offset: number }) {
      const all =
        actor.user.role === 'admin' ||
        // One project asked for, that the caller may see (its membership event may be on its way).
        (filter.project_id !== undefined && (await projects.canSee(filter.project_id, actor)));
      const within = all ? undefined : { projects: projects.projectsOf, param: actor.user.id };
      return { ...(await defectsRepository.list(db, filter, page, within)), ...page };
    },

    /**
     * PUT and PATCH alike: the fields sent replace the stored ones, the others keep their
     * values (PUT's schema makes title, status and priority required, as the seed sends them).
     */
    update: (actor: Actor, id: number, input: Partial<DefectFields>) =>
      change(
        actor,
        id,
        (defect) => ({
          title: input.title ?? defect.title,
          description: input.description === undefined ? defect.description : input.description,
          status: input.status ?? defect.status,
          priority: input.priority ?? defect.priority,
          assignee_id: input.assignee_id === undefined ? defect.assignee_id : input.assignee_id,
          due_date: input.due_date === undefined ? defect.due_date : input.due_date,
        }),
        input.assignee_id,
      ),

    /** A deleted project takes its defects with it, each publishing defect.deleted. */
    removeAllOfProject: (tx: Queryable, projectId: number, context: EventContext & { userId: number }) =>
      outbox.within(tx, context, async (tx, events) => {
        const ids = await defectsRepository.deleteOfProject(tx, projectId);
        for (const id of ids) events.add('defect.deleted', { defect_id: id, deleted_by: context.userId });
        return ids;
      }),

    remove: async (actor: Actor, id: number) => {
      await getVisible(actor, id);
      return outbox.transaction(eventContextOf(actor), async (tx, events) => {
        const defect = await defectsRepository.findById(tx, id, { forUpdate: true });
        if (!defect) throw defectNotFound(id);
        const project = await projects.find(tx, defect.project_id);
        assertMayDelete(actor.user, defect, project?.owner_id);
        await defectsRepository.delete(tx, id);
        events.add('defect.deleted', { defect_id: id, deleted_by: actor.user.id });
      });
    },
  };
}

function differs(defect: Defect, fields: DefectFields): boolean {
  return (Object.keys(fields) as Array<keyof DefectFields>).some((key) => defect[key] !== fields[key]);
}

function publishChange(events: PendingEvents, before: Defect, after: Defect, userId: number): void {
  if (before.status !== after.status) {
    events.add('defect.status_changed', {
      defect_id: after.id,
      old_status: before.status,
      new_status: after.status,
      changed_by: userId,
    });
  }
  events.add('defect.updated', { defect_id: after.id, title: after.title, updated_by: userId });
  if (after.assignee_id !== null && after.assignee_id !== before.assignee_id) {
    publishAssignment(events, { id: after.id, assignee_id: after.assignee_id }, userId);
  }
  if (after.assignee_id === null && before.assignee_id !== null) {
    events.add('defect.unassigned', {
      defect_id: after.id,
      previous_assignee_id: before.assignee_id,
      unassigned_by: userId,
    });
  }
}

/** Not in the seed's table: who must now act on the defect (notifications mail them). */
function publishAssignment(events: PendingEvents, defect: { id: number; assignee_id: number }, userId: number): void {
  events.add('defect.assigned', { defect_id: defect.id, assignee_id: defect.assignee_id, assigned_by: userId });
}
