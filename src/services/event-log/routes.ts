import type { FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import type { AuthenticatedUser } from '../../platform/auth/access-token.ts';
import type { Database } from '../../platform/db/database.ts';
import type { HttpApp } from '../../platform/http/http-app.ts';
import { Page } from '../../platform/http/schema-types.ts';
import { badLastEventId, eventNotFound } from './errors.ts';
import { toEnvelope, type EventFilter } from './event-filter.ts';
import { eventStore } from './event-store.ts';
import type { EventStream } from './event-stream.ts';
import {
  DefectIdParams,
  EventDetailSchema,
  EventIdParams,
  EventListQuery,
  EventSchema,
  HistoryQuery,
  StreamQuery,
} from './schemas.ts';

const common = { tags: ['events'], security: [{ bearer: [] }] };

/** Admins see every event; anyone else only what decision 010 lets them see. */
const filterFor = (user: AuthenticatedUser, query: Omit<EventFilter, 'viewer'>): EventFilter => ({
  ...query,
  viewer: user.role === 'admin' ? undefined : user.id,
});

export function eventLogRoutes(deps: { db: Database; stream: EventStream }) {
  const { db, stream } = deps;
  return async (app: HttpApp) => {
    app.addHook('onRequest', app.authenticate);
    // A stream never ends by itself: end them all, or closing the server would wait forever.
    app.addHook('preClose', async () => stream.close());

    app.get(
      '/v1/events',
      {
        schema: {
          ...common,
          summary: 'Recorded events, newest first, filtered',
          querystring: EventListQuery,
          response: { 200: Page(EventSchema) },
        },
      },
      async (request) => {
        const { limit, offset, ...query } = request.query;
        const page = await eventStore.list(db, filterFor(request.user, query), { limit, offset });
        return { items: page.items.map(toEnvelope), total: page.total, limit, offset };
      },
    );

    app.get(
      '/v1/events/stream',
      {
        schema: {
          ...common,
          summary: 'New events as Server-Sent Events (resume with Last-Event-ID)',
          querystring: StreamQuery,
        },
      },
      async (request, reply) => {
        const { last_event_id: lastEventIdQuery, ...query } = request.query;
        const lastSeq = await lastSeqAsked(db, request.headers['last-event-id'] ?? lastEventIdQuery);
        // Taken before the response starts: past a limit the answer is a plain 429.
        const slot = stream.open(request.user.id);
        reply.hijack();
        reply.raw.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          'x-request-id': request.id,
        });
        const filter = filterFor(request.user, query);
        try {
          await slot.follow({ userId: request.user.id, filter, lastSeq, endsAt: tokenExpiryOf(request) }, reply.raw);
        } catch (error) {
          // The catch-up's read failed: the client reconnects with its Last-Event-ID.
          request.log.warn({ err: error }, 'event stream catch-up failed');
          slot.end('catch-up failed, reconnect');
        }
      },
    );

    app.get(
      '/v1/events/:event_id',
      {
        schema: {
          ...common,
          summary: 'One event; for admins, where it stands at each consumer',
          params: EventIdParams,
          response: { 200: EventDetailSchema },
        },
      },
      async (request) => {
        // One that exists but may not be seen is not found either: ids do not leak.
        const event = await eventStore.findById(db, request.params.event_id, filterFor(request.user, {}));
        if (!event) throw eventNotFound(request.params.event_id);
        if (request.user.role !== 'admin') return { event: toEnvelope(event) };
        return { event: toEnvelope(event), deliveries: await eventStore.deliveriesOf(db, event.event_id) };
      },
    );

    app.get(
      '/v1/defects/:id/history',
      {
        schema: {
          ...common,
          tags: ['events', 'defects'],
          summary: "A defect's changes, from its events, oldest first",
          params: DefectIdParams,
          querystring: HistoryQuery,
          response: { 200: Page(EventSchema) },
        },
      },
      async (request) => {
        const filter = filterFor(request.user, { defect_id: request.params.id });
        const { limit, offset } = request.query;
        const [rows, total] = await Promise.all([
          eventStore.listAfter(db, filter, 0, limit + offset),
          eventStore.count(db, filter),
        ]);
        return { items: rows.slice(offset).map(toEnvelope), total, limit, offset };
      },
    );
  };
}

/**
 * Where a resuming client wants to start: Last-Event-ID (or ?last_event_id=), a whole number
 * from 0 to the latest seq. Anything else is a 400: a made-up number beyond the log would
 * silently skip the events recorded until the log reached it.
 */
async function lastSeqAsked(db: Database, given: string | string[] | undefined): Promise<number | undefined> {
  if (given === undefined) return undefined;
  const text = Array.isArray(given) ? given.join(',') : given;
  const latest = await eventStore.latestSeq(db);
  const seq = /^\d{1,15}$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!(seq <= latest)) throw badLastEventId(text.slice(0, 40), latest);
  return seq;
}

/** The expiry of the token the request came with (the guard has verified it), in ms. */
function tokenExpiryOf(request: FastifyRequest): number | undefined {
  const token = request.headers.authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
  if (!token) return undefined;
  const { exp } = decodeJwt(token);
  return typeof exp === 'number' ? exp * 1000 : undefined;
}
