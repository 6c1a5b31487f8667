import { defineError } from '../../platform/errors/domain-error.ts';

/** The projects service's errors, each with its code and HTTP status. */
export const projectNotFound = defineError('PROJECT_NOT_FOUND', 404, (id: number) => `Project ${id} not found`);

export const memberNotFound = defineError(
  'MEMBER_NOT_FOUND',
  404,
  (projectId: number, userId: number) => `User ${userId} is not a member of project ${projectId}`,
);

export const ownerNotRemovable = defineError(
  'PROJECT_OWNER_NOT_REMOVABLE',
  409,
  (projectId: number, userId: number) => ({
    message: `User ${userId} owns project ${projectId} and cannot be removed from its members`,
    extra: { project_id: projectId, user_id: userId },
  }),
);

export const unknownUser = defineError('MEMBER_UNKNOWN_USER', 422, (userId: number) => ({
  message: `user_id ${userId}: there is no such user`,
  extra: { errors: [{ loc: 'body.user_id', msg: `no user with id ${userId}` }] },
}));
