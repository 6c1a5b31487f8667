import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { forbidden } from '../../platform/errors/common-errors.ts';
import type { HttpApp } from '../../platform/http/http-app.ts';
import { Page, PageQuery } from '../../platform/http/schema-types.ts';
import type { DeadLetterService } from './dead-letter-service.ts';

const ParkedMessageSchema = Type.Object({
  id: Type.String(),
  consumer: Type.String(),
  eventType: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Integer(),
  reason: Type.Union([Type.String(), Type.Null()], {
    description:
      'invalid_message | invalid_data | retries_exhausted | permanent_failure; null when the message carries no reason (not parked by a consumer)',
  }),
  error: Type.String(),
  parkedAt: Type.String(),
  body: Type.Unknown(),
});
const ConsumerQuery = Type.Object(
  { consumer: Type.Optional(Type.String({ minLength: 1 })) },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const Count = (name: string) => Type.Object({ [name]: Type.Integer() });
const common = { tags: ['dead letters'], security: [{ bearer: [] }] };

const requireAdmin = async (request: FastifyRequest) => {
  if (request.user.role !== 'admin') throw forbidden('Dead-letter queues are for admins');
};

/** Admin-only: list, show, replay and purge parked messages, one or all, of one consumer or every one. */
export function deadLetterRoutes(deadLetters: DeadLetterService) {
  return async (app: HttpApp) => {
    app.addHook('onRequest', app.authenticate);
    app.addHook('preHandler', requireAdmin);

    app.get(
      '/v1/admin/dead-letters',
      {
        schema: {
          ...common,
          summary: 'Parked messages',
          querystring: Type.Object(
            { ...PageQuery, consumer: Type.Optional(Type.String({ minLength: 1 })) },
            { additionalProperties: false },
          ),
          response: { 200: Page(ParkedMessageSchema) },
        },
      },
      async (request) => {
        const all = await deadLetters.list(request.query.consumer);
        const { limit, offset } = request.query;
        return { items: all.slice(offset, offset + limit), total: all.length, limit, offset };
      },
    );

    app.get(
      '/v1/admin/dead-letters/:id',
      {
        schema: {
          ...common,
          summary: 'One parked message',
          params: IdParams,
          querystring: ConsumerQuery,
          response: { 200: ParkedMessageSchema },
        },
      },
      async (request) => deadLetters.show(request.params.id, request.query.consumer),
    );

    app.post(
      '/v1/admin/dead-letters/replay',
      {
        schema: {
          ...common,
          summary: 'Replay every parked message (of one consumer)',
          querystring: ConsumerQuery,
          response: { 200: Count('replayed') },
        },
      },
      async (request) => ({ replayed: await deadLetters.replay({ all: true }, request.query.consumer) }),
    );

    app.post(
      '/v1/admin/dead-letters/:id/replay',
      {
        schema: {
          ...common,
          summary: 'Replay one parked message, attempts reset',
          params: IdParams,
          querystring: ConsumerQuery,
          response: { 200: Count('replayed') },
        },
      },
      async (request) => ({ replayed: await deadLetters.replay({ id: request.params.id }, request.query.consumer) }),
    );

    app.delete(
      '/v1/admin/dead-letters',
      {
        schema: {
          ...common,
          summary: 'Purge every parked message (of one consumer)',
          querystring: ConsumerQuery,
          response: { 200: Count('purged') },
        },
      },
      async (request) => ({ purged: await deadLetters.purge({ all: true }, request.query.consumer) }),
    );

    app.delete(
      '/v1/admin/dead-letters/:id',
      {
        schema: {
          ...common,
          summary: 'Purge one parked message',
          params: IdParams,
          querystring: ConsumerQuery,
          response: { 200: Count('purged') },
        },
      },
      async (request) => ({ purged: await deadLetters.purge({ id: request.params.id }, request.query.consumer) }),
    );
  };
}
