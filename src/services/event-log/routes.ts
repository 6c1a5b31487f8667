import type { FastifyRequest } from 'fastify';
import type { AuthenticatedUser } from '../../platform/auth/access-token.ts';
import type { Database } from '../../platform/db/database.ts';
import type { HttpApp } from '../../platform/http/http-app.ts';
import { Page } from '../../platform/http/schema-types.ts';
import { eventNotFound } from './errors.ts';
import { toEnvelope, type EventFilter, type RecordedEvent } from './event-filter.ts';
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
const HEARTBEAT_MS = 15_000;

const filterFor = (user: AuthenticatedUser, query: Omit<EventFilter, 'projectEventsOnly'>): EventFilter => ({
  ...query,
  projectEventsOnly: user.role !== 'admin',
});

export function eventLogRoutes(deps: { db: Database; stream: EventStream }) {
  const { db, stream } = deps;
  const openStreams = new Set<() => void>();
  return async (app: HttpApp) => {
    app.addHook('onRequest', app.authenticate);
    // A stream never ends by itself: end them all, or closing the server would wait forever.
    app.addHook('preClose', async () => {
      for (const end of openStreams) end();
      stream.close();
    });

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
        const lastSeq = lastEventIdOf(request) ?? lastEventIdQuery;
        reply.hijack();
        reply.raw.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          'x-request-id': request.id,
        });
        reply.raw.write(': connected\n\n');
        const send = (event: RecordedEvent) =>
          reply.raw.write(
            `id: ${event.seq}\nevent: ${event.event_type}\ndata: ${JSON.stringify(toEnvelope(event))}\n\n`,
          );
        const stop = await stream.follow(filterFor(request.user, query), lastSeq, send);
        const heartbeat = setInterval(() => reply.raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
        const end = () => {
          openStreams.delete(end);
          clearInterval(heartbeat);
          stop();
          reply.raw.end();
        };
        openStreams.add(end);
        request.raw.once('close', end);
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
        const event = await eventStore.findById(db, request.params.event_id);
        const visible = event && (request.user.role === 'admin' || event.project_id !== null);
        if (!event || !visible) throw eventNotFound(request.params.event_id);
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

function lastEventIdOf(request: FastifyRequest): number | undefined {
  const header = request.headers['last-event-id'];
  if (typeof header !== 'string' || !/^\d+$/.test(header)) return undefined;
  return Number(header);
}
