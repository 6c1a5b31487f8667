import { DomainError, registerErrorStatuses } from '../../platform/http/errors.ts';

registerErrorStatuses({
  AUTH_INVALID_CREDENTIALS: 401,
  USER_NOT_FOUND: 404,
  USERNAME_TAKEN: 409,
});

export const invalidCredentials = () => new DomainError('AUTH_INVALID_CREDENTIALS', 'Incorrect username or password');
export const userNotFound = (id: number) => new DomainError('USER_NOT_FOUND', `User ${id} not found`);
export const usernameTaken = (username: string) =>
  new DomainError('USERNAME_TAKEN', `Username '${username}' is already taken`);
