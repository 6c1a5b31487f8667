import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AuthenticatedUser, TokenVerifier } from '../auth/access-token.ts';
import { unauthenticated, upstreamUnavailable } from '../errors/common-errors.ts';

/** The auth service's key set could not be fetched: our outage, not the caller's bad token. */
function isKeySourceUnavailable(error: unknown): boolean {
  const { code, name } = (error ?? {}) as { code?: string; name?: string };
  return code === 'ERR_JWKS_TIMEOUT' || name === 'TypeError';
}

declare module 'fastify' {
  interface FastifyRequest {
    user: AuthenticatedUser;
  }
  interface FastifyInstance {
    /** onRequest hook for routes that need a signed-in user. */
    authenticate: (request: FastifyRequest) => Promise<void>;
  }
}

export const authGuard = fp(
  async (app: FastifyInstance, options: { verifyToken: TokenVerifier }) => {
    app.decorateRequest('user', null as unknown as AuthenticatedUser);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      const match = header?.match(/^Bearer\s+(\S+)$/i);
      if (!match) throw unauthenticated();
      try {
        request.user = await options.verifyToken(match[1]);
      } catch (error) {
        if (isKeySourceUnavailable(error)) {
          throw upstreamUnavailable("Cannot verify tokens right now: the auth service's keys are unreachable");
        }
        throw unauthenticated('Invalid or expired token: sign in again at /v1/auth/token');
      }
    });
  },
  { name: 'auth-guard' },
);
