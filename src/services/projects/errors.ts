import { defineError } from '../../platform/errors/domain-error.ts';

/** The projects service's errors, each with its code and HTTP status. */
export const projectNotFound = defineError('PROJECT_NOT_FOUND', 404, (id: number) => `Project ${id} not found`);
