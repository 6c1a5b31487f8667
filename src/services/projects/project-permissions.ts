import type { AuthenticatedUser } from '../../platform/auth/access-token.ts';
import { forbidden } from '../../platform/errors/common-errors.ts';

/** Everyone but observers starts projects. */
export function assertMayCreateProject(user: AuthenticatedUser): void {
  if (user.role === 'observer') throw forbidden('Observers cannot create projects');
}

/** Only the owner or an admin changes or deletes a project, or adds and removes its members; an observer (even a demoted owner) only reads. */
export function assertMayChangeProject(
  user: AuthenticatedUser,
  project: { id: number; owner_id: number },
  what = 'change or delete it',
): void {
  if (user.role !== 'admin' && !(project.owner_id === user.id && user.role !== 'observer')) {
    throw forbidden(`Only the owner of project ${project.id} or an admin may ${what}`);
  }
}
