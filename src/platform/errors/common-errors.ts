import { defineError } from './domain-error.ts';

/** Errors every service can answer with; each service declares its own in its `errors.ts`. */

export const unauthenticated = defineError(
  'UNAUTHENTICATED',
  401,
  (message: string = 'Not authenticated: send "Authorization: Bearer <token>"') => message,
);
export const forbidden = defineError('FORBIDDEN', 403, (message: string) => message);
export const validationFailed = defineError(
  'VALIDATION_FAILED',
  422,
  (message: string, extra: Record<string, unknown> = {}) => ({ message, extra }),
);
export const upstreamUnavailable = defineError('UPSTREAM_UNAVAILABLE', 503, (message: string) => message);
export const routeNotFound = defineError(
  'ROUTE_NOT_FOUND',
  404,
  (method: string, path: string) => `No route ${method} ${path}`,
);
export const internalError = defineError(
  'INTERNAL_ERROR',
  500,
  'Internal server error; the request id identifies it in the logs',
);
