import { defineError } from '../../platform/errors/domain-error.ts';

/** The auth service's errors, each with its code and HTTP status. */
export const invalidCredentials = defineError('AUTH_INVALID_CREDENTIALS', 401, 'Incorrect username or password');
export const userNotFound = defineError('USER_NOT_FOUND', 404, (id: number) => `User ${id} not found`);
export const usernameTaken = defineError(
  'USERNAME_TAKEN',
  409,
  (username: string) => `Username '${username}' is already taken`,
);
