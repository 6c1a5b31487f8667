import { actorOf } from '../../platform/http/actor.ts';
import type { HttpApp } from '../../platform/http/http-app.ts';
import { Page } from '../../platform/http/schema-types.ts';
import {
  CreateProjectBody,
  PatchProjectBody,
  ProjectIdParams,
  ProjectListQuery,
  ProjectSchema,
  ReplaceProjectBody,
} from './schemas.ts';
import type { ProjectsService } from './projects-service.ts';

const common = { tags: ['projects'], security: [{ bearer: [] }] };

export function projectsRoutes(projects: ProjectsService) {
  return async (app: HttpApp) => {
    app.addHook('onRequest', app.authenticate);

    app.post(
      '/v1/projects',
      {
        schema: {
          ...common,
          summary: 'Create a project (publishes project.created)',
          body: CreateProjectBody,
          response: { 201: ProjectSchema },
        },
      },
      async (request, reply) => reply.code(201).send(await projects.create(actorOf(request), request.body)),
    );

    app.get(
      '/v1/projects',
      {
        schema: {
          ...common,
          summary: 'List projects',
          querystring: ProjectListQuery,
          response: { 200: Page(ProjectSchema) },
        },
      },
      async (request) => projects.list(request.query),
    );

    app.get(
      '/v1/projects/:id',
      {
        schema: { ...common, summary: 'A project', params: ProjectIdParams, response: { 200: ProjectSchema } },
      },
      async (request) => projects.get(request.params.id),
    );

    app.put(
      '/v1/projects/:id',
      {
        schema: {
          ...common,
          summary: 'Replace a project (owner or admin; publishes project.updated)',
          params: ProjectIdParams,
          body: ReplaceProjectBody,
          response: { 200: ProjectSchema },
        },
      },
      async (request) => projects.replace(actorOf(request), request.params.id, request.body),
    );

    app.patch(
      '/v1/projects/:id',
      {
        schema: {
          ...common,
          summary: 'Change some fields of a project (owner or admin)',
          params: ProjectIdParams,
          body: PatchProjectBody,
          response: { 200: ProjectSchema },
        },
      },
      async (request) => projects.patch(actorOf(request), request.params.id, request.body),
    );

    app.delete(
      '/v1/projects/:id',
      {
        schema: {
          ...common,
          summary: 'Delete a project (owner or admin; publishes project.deleted)',
          params: ProjectIdParams,
        },
      },
      async (request, reply) => {
        await projects.remove(actorOf(request), request.params.id);
        return reply.code(204).send();
      },
    );
  };
}
