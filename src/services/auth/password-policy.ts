import { readFileSync } from 'node:fs';
import { weakPassword } from './errors.ts';

export const MIN_PASSWORD_LENGTH = 8;

/** The 10,000 most common passwords, lower case (the file says where it comes from). */
const COMMON_PASSWORDS: ReadonlySet<string> = new Set(
  readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#')),
);

/**
 * Throws AUTH_WEAK_PASSWORD (422, naming `field`) for a password shorter than 8
 * characters or one of the most common passwords (compared in lower case: `Password1`
 * is as guessable as `password1`).
 */
export function assertAcceptablePassword(password: string, field: string): void {
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    throw weakPassword(field, `must be at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  if (COMMON_PASSWORDS.has(password.toLowerCase())) {
    throw weakPassword(field, 'is one of the most common passwords; choose another');
  }
}
