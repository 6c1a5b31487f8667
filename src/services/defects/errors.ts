import { defineError } from '../../platform/errors/domain-error.ts';

/** The defects service's errors, each with its code and HTTP status. */
export const defectNotFound = defineError('DEFECT_NOT_FOUND', 404, (id: number) => `Defect ${id} not found`);

export const projectNotFound = defineError('DEFECT_PROJECT_NOT_FOUND', 404, (id: number) => ({
  message: `Project ${id} not found`,
  extra: { project_id: id },
}));

const quote = (status: string) => `«${status}»`;

export const badTransition = defineError(
  'DEFECT_BAD_TRANSITION',
  409,
  (from: string, to: string, allowed: readonly string[]) => ({
    message: `A defect cannot move from ${quote(from)} to ${quote(to)}; allowed next: ${allowed.map(quote).join(', ')}`,
    extra: { current_status: from, requested_status: to, allowed_next: allowed },
  }),
);

export const badInitialStatus = defineError(
  'DEFECT_BAD_INITIAL_STATUS',
  422,
  (initial: string, given: string) =>
    `A new defect starts as ${quote(initial)}, not ${quote(given)}; move it through the workflow afterwards`,
);

export const assigneeNotMember = defineError(
  'DEFECT_ASSIGNEE_NOT_MEMBER',
  422,
  (userId: number, projectId: number) => ({
    message: `assignee_id ${userId}: the assignee must be a member of project ${projectId}`,
    extra: { errors: [{ loc: 'body.assignee_id', msg: `user ${userId} is not a member of project ${projectId}` }] },
  }),
);
