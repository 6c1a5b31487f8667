/**
 * Domain code says what went wrong with a code; only the HTTP layer turns codes into
 * statuses (see `errorStatuses` below and each service's own catalogue).
 */
export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Codes shared by every service; services register their own with `registerErrorStatuses`. */
const errorStatuses = new Map<string, number>([
  ['UNAUTHENTICATED', 401],
  ['FORBIDDEN', 403],
  ['NOT_FOUND', 404],
  ['CONFLICT', 409],
  ['VALIDATION_FAILED', 422],
  ['UPSTREAM_UNAVAILABLE', 503],
]);

export function registerErrorStatuses(statuses: Record<string, number>): void {
  for (const [code, status] of Object.entries(statuses)) errorStatuses.set(code, status);
}

export function statusOfError(code: string): number {
  return errorStatuses.get(code) ?? 500;
}

export const unauthenticated = (message = 'Not authenticated: send "Authorization: Bearer <token>"') =>
  new DomainError('UNAUTHENTICATED', message);
export const forbidden = (message: string) => new DomainError('FORBIDDEN', message);
export const validationFailed = (message: string, extra?: Record<string, unknown>) =>
  new DomainError('VALIDATION_FAILED', message, extra);
