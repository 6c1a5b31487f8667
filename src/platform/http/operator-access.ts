import { createHash, timingSafeEqual } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { unauthenticated } from '../errors/common-errors.ts';

/**
 * Who may read the operator endpoints' inside information: `/metrics` (closed by
 * METRICS_TOKEN when it is set) and the error text of `/readyz` checks (loopback clients, or
 * anyone with that token). See docs/security.md, "Limits".
 */
export interface OperatorAccess {
  /** Throws 401 when a token is configured and the request does not carry it. */
  requireForMetrics(request: FastifyRequest): void;
  /** Whether the request may see `/readyz` details: from this machine, or with the token. */
  maySeeDetails(request: FastifyRequest): boolean;
}

export function operatorAccess(token: string | undefined): OperatorAccess {
  return {
    requireForMetrics(request) {
      if (token === undefined || bearerMatches(request.headers.authorization, token)) return;
      throw unauthenticated('Not authenticated: /metrics needs "Authorization: Bearer <METRICS_TOKEN>"');
    },
    maySeeDetails: (request) =>
      isLoopback(request.socket.remoteAddress) ||
      (token !== undefined && bearerMatches(request.headers.authorization, token)),
  };
}

/**
 * Compares in constant time: both sides are hashed first, so neither the position of the
 * first wrong character nor the token's length shows in the time the comparison takes.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer (\S+)$/i.exec(header ?? '')?.[1] ?? '';
  return timingSafeEqual(sha256(given), sha256(token));
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * The socket's peer address, never a forwarded-for header, not even from TRUSTED_PROXIES
 * (so not `request.ip`): behind a proxy on this machine every client would look local. 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6.
 */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  if (isIPv4(v4)) return v4.startsWith('127.');
  return address === '::1';
}
