import type { FastifyRequest } from 'fastify';
import type { AuthenticatedUser } from '../auth/access-token.ts';
import type { EventContext } from '../events/outbox.ts';

/** Who asks, and how to follow the request through the events it causes. */
export interface Actor {
  user: AuthenticatedUser;
  requestId: string;
  traceparent: string;
  /** The caller's Authorization header, for calls to other services on their behalf. */
  authorization: string;
}

export function actorOf(request: FastifyRequest): Actor {
  return {
    user: request.user,
    requestId: request.id,
    traceparent: request.traceparent,
    authorization: request.headers.authorization ?? '',
  };
}

/** The event context of an actor's change: the events carry who and which request. */
export function eventContextOf(actor: Actor): EventContext {
  return { userId: actor.user.id, requestId: actor.requestId, traceparent: actor.traceparent };
}

/** Tracing only, for requests without a signed-in user (registration). */
export function tracingOf(request: FastifyRequest): Omit<EventContext, 'userId'> {
  return { requestId: request.id, traceparent: request.traceparent };
}
