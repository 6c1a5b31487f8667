import { createRemoteJWKSet, jwtVerify, type CryptoKey, type JWTVerifyResult, type KeyObject } from 'jose';

/** The roles of the token contract; each service decides what a role may do. */
export const ROLES = ['admin', 'manager', 'engineer', 'observer'] as const;
export type Role = (typeof ROLES)[number];

export interface AuthenticatedUser {
  id: number;
  username: string;
  role: Role;
  /**
   * The user's token generation when the token was issued (claim `gen`; 0 in tokens from
   * before it existed). Always set by the verifier; optional for users made up in tests.
   */
  tokenGeneration?: number;
}

export const TOKEN_ISSUER = 'defect-control-auth';
export const TOKEN_AUDIENCE = 'defect-control';
export const TOKEN_ALGORITHM = 'EdDSA';
/** The claim that carries the user's token generation: see token-revocations.ts. */
export const TOKEN_GENERATION_CLAIM = 'gen';

export type TokenVerifier = (token: string) => Promise<AuthenticatedUser>;

/**
 * Verifies access tokens with the auth service's public key: given directly (same process,
 * or JWT_PUBLIC_KEY), or fetched and cached from the auth service's JWKS endpoint.
 */
export function createTokenVerifier(key: CryptoKey | KeyObject | { jwksUrl: string }): TokenVerifier {
  const verifySignature = signatureVerifier(key);
  const verified = new Map<string, { user: AuthenticatedUser; expiresAt: number }>();
  return async (token) => {
    const known = verified.get(token);
    if (known && known.expiresAt > Date.now()) return known.user;
    const { payload } = await verifySignature(token);
    const id = Number(payload.sub);
    const role = payload.role as Role;
    const generation = payload[TOKEN_GENERATION_CLAIM] ?? 0;
    if (
      !Number.isInteger(id) ||
      !ROLES.includes(role) ||
      typeof payload.username !== 'string' ||
      !payload.exp ||
      !Number.isInteger(generation)
    ) {
      throw new Error('token claims are incomplete');
    }
    const user = { id, username: payload.username, role, tokenGeneration: generation as number };
    // A signature check per request was the costliest step of a write; a token verified once
    // is good until it expires. Bounded: the oldest entries go first.
    if (verified.size >= VERIFIED_TOKENS_KEPT) verified.delete(verified.keys().next().value!);
    verified.set(token, { user, expiresAt: payload.exp * 1000 });
    return user;
  };
}

const VERIFIED_TOKENS_KEPT = 10_000;

/** jwtVerify with the key, or with the key set it fetches (its overloads take one or the other). */
function signatureVerifier(
  key: CryptoKey | KeyObject | { jwksUrl: string },
): (token: string) => Promise<JWTVerifyResult> {
  const options = { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, algorithms: [TOKEN_ALGORITHM] };
  if ('jwksUrl' in key) {
    const keySet = createRemoteJWKSet(new URL(key.jwksUrl));
    return (token) => jwtVerify(token, keySet, options);
  }
  return (token) => jwtVerify(token, key, options);
}

/**
 * A service apart from auth verifies tokens with JWT_PUBLIC_KEY when given, else with
 * the keys the auth service publishes at AUTH_URL.
 */
export async function tokenVerifierFromConfig(config: {
  JWT_PUBLIC_KEY?: string;
  AUTH_URL?: string;
}): Promise<TokenVerifier> {
  if (config.JWT_PUBLIC_KEY) {
    const { importSPKI } = await import('jose');
    return createTokenVerifier(await importSPKI(config.JWT_PUBLIC_KEY, TOKEN_ALGORITHM));
  }
  if (config.AUTH_URL) return createTokenVerifier({ jwksUrl: `${config.AUTH_URL}/v1/auth/jwks.json` });
  throw new Error('Set AUTH_URL (the auth service, whose public keys verify tokens) or JWT_PUBLIC_KEY');
}
