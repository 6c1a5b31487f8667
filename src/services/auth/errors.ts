import { defineError } from '../../platform/errors/domain-error.ts';

/** The auth service's errors, each with its code and HTTP status. */
export const invalidCredentials = defineError('AUTH_INVALID_CREDENTIALS', 401, 'Incorrect username or password');
export const userNotFound = defineError('USER_NOT_FOUND', 404, (id: number) => `User ${id} not found`);
export const usernameTaken = defineError(
  'USERNAME_TAKEN',
  409,
  (username: string) => `Username '${username}' is already taken`,
);
/** `retry_after` (seconds) also becomes the Retry-After header. */
export const tooManySignInFailures = defineError('AUTH_TOO_MANY_ATTEMPTS', 429, (retryAfter: number) => ({
  message: `Too many failed sign-ins for this username or from this address; try again in ${retryAfter} s`,
  extra: { retry_after: retryAfter },
}));
export const tooManyRegistrations = defineError('AUTH_TOO_MANY_REGISTRATIONS', 429, (retryAfter: number) => ({
  message: `Too many registrations from this address; try again in ${retryAfter} s`,
  extra: { retry_after: retryAfter },
}));
export const weakPassword = defineError('AUTH_WEAK_PASSWORD', 422, (field: string, reason: string) => ({
  message: `Invalid request: body.${field}: ${reason}`,
  extra: { errors: [{ loc: `body.${field}`, msg: reason }] },
}));
export const wrongPassword = defineError('AUTH_WRONG_PASSWORD', 422, (field: string) => ({
  message: `Invalid request: body.${field}: is not the current password`,
  extra: { errors: [{ loc: `body.${field}`, msg: 'is not the current password' }] },
}));
export const cannotDisableSelf = defineError(
  'AUTH_CANNOT_DISABLE_SELF',
  409,
  'An admin cannot disable their own account: ask another admin',
);
