/**
 * What a use case or a domain rule throws when a request cannot be carried out. Each
 * service declares its errors once with `defineError` (code, status, message), as Fastify
 * declares its own with `@fastify/error`: the status travels on the error, so the HTTP
 * layer turns any declared error into a response without a registry, and domain code
 * imports nothing of HTTP.
 */
export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    /** Stable, machine-readable: clients branch on it (`code` in the response). */
    readonly code: string,
    /** The HTTP status the error answers with. */
    readonly statusCode: number,
    message: string,
    /** More fields for the response body (e.g. the allowed next statuses). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** A declared error: call it to make the error; its code and status can be listed. */
export interface DeclaredError<Args extends unknown[]> {
  (...args: Args): DomainError;
  readonly code: string;
  readonly statusCode: number;
}

type Describe<Args extends unknown[]> = (...args: Args) => string | { message: string; extra: Record<string, unknown> };

export function defineError<Args extends unknown[] = []>(
  code: string,
  statusCode: number,
  describe: string | Describe<Args>,
): DeclaredError<Args> {
  const create = (...args: Args) => {
    const described = typeof describe === 'string' ? describe : describe(...args);
    return typeof described === 'string'
      ? new DomainError(code, statusCode, described)
      : new DomainError(code, statusCode, described.message, described.extra);
  };
  return Object.assign(create, { code, statusCode });
}

export function isDeclaredError(value: unknown): value is DeclaredError<unknown[]> {
  return (
    typeof value === 'function' &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { statusCode?: unknown }).statusCode === 'number'
  );
}
