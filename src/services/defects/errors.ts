import { DomainError, registerErrorStatuses } from '../../platform/http/errors.ts';

registerErrorStatuses({
  DEFECT_NOT_FOUND: 404,
  DEFECT_PROJECT_NOT_FOUND: 404,
  DEFECT_BAD_TRANSITION: 409,
  DEFECT_BAD_INITIAL_STATUS: 422,
});

export const defectNotFound = (id: number) => new DomainError('DEFECT_NOT_FOUND', `Defect ${id} not found`);
export const projectNotFound = (id: number) =>
  new DomainError('DEFECT_PROJECT_NOT_FOUND', `Project ${id} not found`, { project_id: id });
