import type { AuthenticatedUser, TokenVerifier } from './access-token.ts';

/**
 * What this process knows about revoked tokens: for each user, the lowest token
 * generation still valid. Auth raises a user's generation when their role changes, when
 * they are disabled and when their password changes, and says so in the `user.*` event;
 * every token carries the generation it was issued with (claim `gen`). Comparing
 * generations rather than times is exact: a token issued in the same second (or
 * millisecond) as the change, but after it, carries the new generation and stays valid.
 * See docs/decisions/009-sign-in-throttling-and-token-revocation.md.
 */
export interface TokenRevocations {
  /** Tokens of `userId` with a generation below `validFrom` are void from now on. Returns true when that is news. */
  revoke(userId: number, validFrom: number): boolean;
  isRevoked(user: Pick<AuthenticatedUser, 'id' | 'tokenGeneration'>): boolean;
  /** Called once for each revocation that is news to this process (to close a user's open streams, say). */
  onRevoked(listener: (userId: number) => void): () => void;
}

export function createTokenRevocations(): TokenRevocations {
  const validFromByUser = new Map<number, number>();
  const listeners = new Set<(userId: number) => void>();
  return {
    revoke(userId, validFrom) {
      if ((validFromByUser.get(userId) ?? 0) >= validFrom) return false;
      validFromByUser.set(userId, validFrom);
      for (const listener of listeners) listener(userId);
      return true;
    },
    isRevoked: (user) => (user.tokenGeneration ?? 0) < (validFromByUser.get(user.id) ?? 0),
    onRevoked(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export class TokenRevoked extends Error {
  override name = 'TokenRevoked';
}

/**
 * The verifier, then the revocation check: after the verifier's cache of verified tokens,
 * so that a revocation takes effect on the next request even for a token verified before.
 */
export function rejectingRevoked(verify: TokenVerifier, revocations: TokenRevocations): TokenVerifier {
  return async (token) => {
    const user = await verify(token);
    if (revocations.isRevoked(user)) throw new TokenRevoked(`token of user ${user.id} was revoked`);
    return user;
  };
}
