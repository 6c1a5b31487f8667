import { Type } from '@sinclair/typebox';
import { actorOf, tracingOf } from '../../platform/http/actor.ts';
import type { HttpApp } from '../../platform/http/http-app.ts';
import { forbidden } from '../../platform/errors/common-errors.ts';
import { Page, PageQuery } from '../../platform/http/schema-types.ts';
import { userNotFound } from './errors.ts';
import {
  PasswordChangeBody,
  RegisterBody,
  TokenBody,
  TokenResponse,
  UserChangeBody,
  UserIdParams,
  UserSchema,
  VisibleUserSchema,
} from './schemas.ts';
import type { AuthService } from './auth-service.ts';

const tags = ['auth'];
const secured = { security: [{ bearer: [] }] };

export function authRoutes(auth: AuthService) {
  return async (app: HttpApp) => {
    app.post(
      '/v1/auth/token',
      {
        schema: {
          tags,
          summary: 'Sign in (OAuth2 password flow, form-encoded)',
          consumes: ['application/x-www-form-urlencoded', 'application/json'],
          body: TokenBody,
          response: { 200: TokenResponse },
        },
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-store');
        return auth.issueToken(request.body.username, request.body.password, request.ip);
      },
    );

    app.post(
      '/v1/auth/register',
      {
        schema: {
          tags,
          summary: 'Create an account (role engineer)',
          body: RegisterBody,
          response: { 201: UserSchema },
        },
      },
      async (request, reply) => {
        const user = await auth.register(request.body, request.ip, tracingOf(request));
        return reply.code(201).send(user);
      },
    );

    app.get(
      '/v1/auth/jwks.json',
      {
        schema: { tags, summary: 'Public keys that verify access tokens' },
      },
      async () => ({ keys: [auth.publicJwk] }),
    );

    app.get(
      '/v1/users/me',
      {
        onRequest: app.authenticate,
        schema: { tags: ['users'], summary: 'The signed-in user', ...secured, response: { 200: UserSchema } },
      },
      async (request) => auth.getUser(request.user.id),
    );

    app.get(
      '/v1/users',
      {
        onRequest: app.authenticate,
        schema: {
          tags: ['users'],
          summary: 'List users (admins: all; others: id, username, full name of those sharing a project with them)',
          ...secured,
          querystring: Type.Object(PageQuery, { additionalProperties: false }),
          response: { 200: Page(VisibleUserSchema) },
        },
      },
      async (request) => auth.listUsers(request.user, request.query),
    );

    app.get(
      '/v1/users/:id',
      {
        onRequest: app.authenticate,
        schema: {
          tags: ['users'],
          summary: 'A user (admins and oneself: all fields; someone sharing a project: id, username, full name)',
          ...secured,
          params: UserIdParams,
          response: { 200: VisibleUserSchema },
        },
      },
      async (request) => auth.viewUser(request.user, request.params.id),
    );

    app.post(
      '/v1/users/me/password',
      {
        onRequest: app.authenticate,
        schema: {
          tags: ['users'],
          summary: 'Change your password; every token you hold ends (sign in again)',
          ...secured,
          body: PasswordChangeBody,
        },
      },
      async (request, reply) => {
        await auth.changePassword(actorOf(request), request.body, request.ip);
        return reply.code(204).send();
      },
    );

    app.patch(
      '/v1/users/:id',
      {
        onRequest: app.authenticate,
        schema: {
          tags: ['users'],
          summary: "Change a user's role, or disable or enable the user (admins); either ends the user's tokens",
          ...secured,
          params: UserIdParams,
          body: UserChangeBody,
          response: { 200: UserSchema },
        },
      },
      async (request) => {
        if (request.user.role !== 'admin') throw forbidden('Only an admin may change users');
        const user = await auth.changeUser(request.params.id, request.body, actorOf(request));
        if (!user) throw userNotFound(request.params.id);
        return user;
      },
    );
  };
}
