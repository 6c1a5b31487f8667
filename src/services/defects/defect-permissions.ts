import type { AuthenticatedUser } from '../../platform/auth/access-token.ts';
import { forbidden } from '../../platform/errors/common-errors.ts';

interface DefectParties {
  id: number;
  reporter_id: number;
  assignee_id: number | null;
}

/** Managers, engineers (and admins) report defects; observers only read. */
export function assertMayReport(user: AuthenticatedUser): void {
  if (user.role === 'observer') throw forbidden('Observers cannot report defects');
}

/** The reporter, the assignee, the project's owner and admins change a defect. */
export function assertMayChange(
  user: AuthenticatedUser,
  defect: DefectParties,
  projectOwnerId: number | undefined,
): void {
  const involved = user.id === defect.reporter_id || user.id === defect.assignee_id || user.id === projectOwnerId;
  if (user.role !== 'admin' && !(involved && user.role !== 'observer')) {
    throw forbidden(`Only the reporter, the assignee, the project's owner or an admin may change defect ${defect.id}`);
  }
}

/** The project's owner and admins delete defects; an observer (even a demoted owner) only reads. */
export function assertMayDelete(
  user: AuthenticatedUser,
  defect: DefectParties,
  projectOwnerId: number | undefined,
): void {
  if (user.role !== 'admin' && !(user.id === projectOwnerId && user.role !== 'observer')) {
    throw forbidden(`Only the project's owner or an admin may delete defect ${defect.id}`);
  }
}
