import { actorOf } from '../../platform/http/actor.ts';
import type { HttpApp } from '../../platform/http/http-app.ts';
import { Page } from '../../platform/http/schema-types.ts';
import type { DefectsService } from './defects-service.ts';
import {
  CreateDefectBody,
  DefectIdParams,
  DefectListQuery,
  DefectSchema,
  PatchDefectBody,
  ReplaceDefectBody,
} from './schemas.ts';

const common = { tags: ['defects'], security: [{ bearer: [] }] };

export function defectsRoutes(defects: DefectsService) {
  return async (app: HttpApp) => {
    app.addHook('onRequest', app.authenticate);

    app.post(
      '/v1/defects',
      {
        schema: {
          ...common,
          summary: 'Report a defect (publishes defect.created)',
          body: CreateDefectBody,
          response: { 201: DefectSchema },
        },
      },
      async (request, reply) => reply.code(201).send(await defects.create(actorOf(request), request.body)),
    );

    app.get(
      '/v1/defects',
      {
        schema: {
          ...common,
          summary: "List defects, filtered (admins: all; others: their projects')",
          querystring: DefectListQuery,
          response: { 200: Page(DefectSchema) },
        },
      },
      async (request) => {
        const { limit, offset, ...filter } = request.query;
        return defects.list(actorOf(request), filter, { limit, offset });
      },
    );

    app.get(
      '/v1/defects/:id',
      {
        schema: { ...common, summary: 'A defect', params: DefectIdParams, response: { 200: DefectSchema } },
      },
      async (request) => defects.get(actorOf(request), request.params.id),
    );

    app.put(
      '/v1/defects/:id',
      {
        schema: {
          ...common,
          summary: 'Update a defect (publishes defect.status_changed when the status changes, then defect.updated)',
          params: DefectIdParams,
          body: ReplaceDefectBody,
          response: { 200: DefectSchema },
        },
      },
      async (request) => defects.update(actorOf(request), request.params.id, request.body),
    );

    app.patch(
      '/v1/defects/:id',
      {
        schema: {
          ...common,
          summary: 'Change some fields of a defect',
          params: DefectIdParams,
          body: PatchDefectBody,
          response: { 200: DefectSchema },
        },
      },
      async (request) => defects.update(actorOf(request), request.params.id, request.body),
    );

    app.delete(
      '/v1/defects/:id',
      {
        schema: {
          ...common,
          summary: 'Delete a defect (project owner or admin; publishes defect.deleted)',
          params: DefectIdParams,
        },
      },
      async (request, reply) => {
        await defects.remove(actorOf(request), request.params.id);
        return reply.code(204).send();
      },
    );
  };
}
