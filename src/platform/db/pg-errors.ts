/** PostgreSQL SQLSTATE codes we branch on (never on message text). */
export const PG_UNIQUE_VIOLATION = '23505';
export const PG_FOREIGN_KEY_VIOLATION = '23503';
export const PG_DUPLICATE_DATABASE = '42P04';
/** e.g. a NUL character in text: PostgreSQL cannot store it. */
export const PG_CHARACTER_NOT_IN_REPERTOIRE = '22021';

export function hasPgCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}
