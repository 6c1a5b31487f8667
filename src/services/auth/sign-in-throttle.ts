import type { AttemptCounter, WindowCount } from './attempt-counter.ts';
import { tooManyRegistrations, tooManySignInFailures } from './errors.ts';

export interface ThrottleLimits {
  failuresPerUsername: number;
  failuresPerAddress: number;
  failureWindowMs: number;
  registrationsPerAddress: number;
  registrationWindowMs: number;
}

export type ThrottledLimit = 'username' | 'address' | 'registration';

/** What a sign-in does once its password was checked. */
export interface SignInAttempt {
  /** Clears the username's failures and takes the address's advance count back. */
  succeeded(): Promise<void>;
}

/** Whole seconds for Retry-After, at least 1. */
const retryAfterSeconds = (counts: WindowCount[]) =>
  Math.max(1, Math.ceil(Math.max(...counts.map((count) => count.retryAfterMs)) / 1000));

/**
 * Failed sign-ins per username and per client address, and registrations per address,
 * each in a fixed window. A sign-in is counted as a failure before its password is
 * checked, so that concurrent guesses cannot all reach the (costly) hashing; a success
 * then clears the username's count and takes the address's back.
 */
export function createSignInThrottle(
  counter: AttemptCounter,
  limits: ThrottleLimits,
  onThrottled: (limit: ThrottledLimit) => void = () => {},
) {
  return {
    /** Throws AUTH_TOO_MANY_ATTEMPTS (429) when either limit is reached; call before hashing. */
    async beginSignIn(username: string, address: string): Promise<SignInAttempt> {
      const keys = { username: `sign-in:user:${username.toLowerCase()}`, address: `sign-in:address:${address}` };
      const [byUsername, byAddress] = await Promise.all([
        counter.hit(keys.username, limits.failureWindowMs),
        counter.hit(keys.address, limits.failureWindowMs),
      ]);
      const usernameOver = byUsername.count > limits.failuresPerUsername;
      const addressOver = byAddress.count > limits.failuresPerAddress;
      if (usernameOver || addressOver) {
        // Only the limit that refused keeps counting: a refused attempt failed no password.
        if (!usernameOver) await counter.takeBack(keys.username);
        if (!addressOver) await counter.takeBack(keys.address);
        onThrottled(usernameOver ? 'username' : 'address');
        throw tooManySignInFailures(
          retryAfterSeconds([usernameOver && byUsername, addressOver && byAddress].filter((c) => c !== false)),
        );
      }
      return {
        succeeded: async () => {
          await Promise.all([counter.clear(keys.username), counter.takeBack(keys.address)]);
        },
      };
    },

    /** Counts a registration from `address`; throws AUTH_TOO_MANY_REGISTRATIONS (429) past the limit. */
    async countRegistration(address: string): Promise<void> {
      const byAddress = await counter.hit(`register:address:${address}`, limits.registrationWindowMs);
      if (byAddress.count > limits.registrationsPerAddress) {
        onThrottled('registration');
        throw tooManyRegistrations(retryAfterSeconds([byAddress]));
      }
    },
  };
}

export type SignInThrottle = ReturnType<typeof createSignInThrottle>;
