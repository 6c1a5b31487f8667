import { actorOf } from '../../platform/http/actor.ts';
import type { HttpApp } from '../../platform/http/http-app.ts';
import { Page } from '../../platform/http/schema-types.ts';
import {
  AddMemberBody,
  CreateProjectBody,
  MemberListQuery,
  MemberParams,
  MemberSchema,
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
          summary: 'List projects (admins: all; others: those they are a member of)',
          querystring: ProjectListQuery,
          response: { 200: Page(ProjectSchema) },
        },
      },
      async (request) => projects.list(actorOf(request), request.query),
    );

    app.get(
      '/v1/projects/:id',
      {
        schema: {
          ...common,
          summary: 'A project (members and admins; 404 for anyone else)',
          params: ProjectIdParams,
          response: { 200: ProjectSchema },
        },
      },
      async (request) => projects.get(actorOf(request), request.params.id),
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

    app.get(
      '/v1/projects/:id/members',
      {
        schema: {
          ...common,
          summary: "A project's members (members and admins)",
          params: ProjectIdParams,
          querystring: MemberListQuery,
          response: { 200: Page(MemberSchema) },
        },
      },
      async (request) => projects.listMembers(actorOf(request), request.params.id, request.query),
    );

    app.get(
      '/v1/projects/:id/members/:user_id',
      {
        schema: {
          ...common,
          summary: 'One member of a project (members and admins; 404 if the user is not a member)',
          params: MemberParams,
          response: { 200: MemberSchema },
        },
      },
      async (request) => projects.getMember(actorOf(request), request.params.id, request.params.user_id),
    );

    app.post(
      '/v1/projects/:id/members',
      {
        schema: {
          ...common,
          summary: 'Add a member (owner or admin; publishes project.member_added; 200 and no event if already one)',
          params: ProjectIdParams,
          body: AddMemberBody,
          response: { 200: MemberSchema, 201: MemberSchema },
        },
      },
      async (request, reply) => {
        const { added, member } = await projects.addMember(actorOf(request), request.params.id, request.body.user_id);
        return reply.code(added ? 201 : 200).send(member);
      },
    );

    app.delete(
      '/v1/projects/:id/members/:user_id',
      {
        schema: {
          ...common,
          summary: 'Remove a member (owner or admin; never the owner; publishes project.member_removed)',
          params: MemberParams,
        },
      },
      async (request, reply) => {
        await projects.removeMember(actorOf(request), request.params.id, request.params.user_id);
        return reply.code(204).send();
      },
    );
  };
}
