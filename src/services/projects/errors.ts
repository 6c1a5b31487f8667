import { DomainError, registerErrorStatuses } from '../../platform/http/errors.ts';

registerErrorStatuses({ PROJECT_NOT_FOUND: 404 });

export const projectNotFound = (id: number) => new DomainError('PROJECT_NOT_FOUND', `Project ${id} not found`);
