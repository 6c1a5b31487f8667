import httpProxy from '@fastify/http-proxy';
import replyFrom from '@fastify/reply-from';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'undici';
import type { TokenVerifier } from '../../platform/auth/access-token.ts';
import { authGuard } from '../../platform/http/auth-guard.ts';
import { createBaseApp, sendReadiness, type HttpApp } from '../../platform/http/http-app.ts';
import { operatorAccess } from '../../platform/http/operator-access.ts';
import type { DeadLetterService } from '../dead-letters/dead-letter-service.ts';
import { deadLetterRoutes } from '../dead-letters/routes.ts';
import type { Logger } from '../../platform/logger.ts';
import { createMetrics } from '../../platform/metrics/metrics.ts';
import { asyncApiRoutes } from '../../contracts/asyncapi-routes.ts';

export interface Upstreams {
  auth: string;
  projects: string;
  defects: string;
  events: string;
}

/** Which service answers which public path. */
const ROUTES: Array<{ prefix: string; service: keyof Upstreams }> = [
  { prefix: '/v1/auth', service: 'auth' },
  { prefix: '/v1/users', service: 'auth' },
  { prefix: '/v1/projects', service: 'projects' },
  { prefix: '/v1/defects', service: 'defects' },
  { prefix: '/v1/events', service: 'events' },
];

/**
 * The public entrance when services run in their own processes: one port, request ids
 * set here and passed on, readiness and OpenAPI summed up from the services behind it.
 */
export async function buildGateway(options: {
  log: Logger;
  upstreams: Upstreams;
  /** With RabbitMQ configured, the gateway also serves the admin API over the dead-letter queues. */
  deadLetters?: { service: DeadLetterService; verifyToken: TokenVerifier };
  /** METRICS_TOKEN: closes /metrics, and is sent to the services to read their /readyz details. */
  metricsToken?: string;
  /** TRUSTED_PROXIES: a load balancer in front of the gateway whose X-Forwarded-For names the client. */
  trustedProxies?: string[];
}): Promise<HttpApp> {
  const access = operatorAccess(options.metricsToken);
  const app = createBaseApp(options.log, createMetrics(), access, options.trustedProxies);
  if (options.deadLetters) {
    await app.register(authGuard, { verifyToken: options.deadLetters.verifyToken });
    await app.register(deadLetterRoutes(options.deadLetters.service));
  }
  const services = Object.entries(options.upstreams) as Array<[keyof Upstreams, string]>;

  for (const route of ROUTES) {
    await app.register(httpProxy, {
      upstream: options.upstreams[route.service],
      prefix: route.prefix,
      rewritePrefix: route.prefix,
      replyOptions: {
        rewriteRequestHeaders: (originalRequest, headers) => headersForService(originalRequest, headers),
      },
    });
  }

  // A defect's history is the event log's, under the defects' path: a route of its own,
  // more specific than the /v1/defects/* prefix above.
  await app.register(async (scope) => {
    await scope.register(replyFrom, { base: options.upstreams.events });
    scope.get('/v1/defects/:id/history', (request, reply) =>
      reply.from(request.url, {
        rewriteRequestHeaders: (_req, headers) => headersForService(request, headers),
      }),
    );
  });

  app.get('/readyz', { schema: { hide: true } }, async (request, reply) => {
    const checks = await Promise.all(
      services.map(async ([name, url]) => ({ name, ...(await readinessOf(url, options.metricsToken)) })),
    );
    return sendReadiness(reply, checks, access.maySeeDetails(request));
  });

  await asyncApiRoutes(app);

  let mergedDocument: OpenApiDocument = {};
  await app.register(swagger, { openapi: { info: { title: 'Defect Control', version: '1.0.0' } } });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiHooks: {
      preHandler: (_request, _reply, done) => {
        mergeOpenApiDocuments(services.map(([, url]) => url)).then((merged) => {
          mergedDocument = merged;
          done();
        }, done);
      },
    },
    transformSpecification: () => mergedDocument,
  });
  return app;
}

/**
 * What a service gets besides the caller's headers: the request id and trace, and the
 * caller's address in X-Forwarded-For. The caller's own X-Forwarded-* headers are replaced or
 * dropped, never passed on: a service that trusts the gateway (TRUSTED_PROXIES) takes the
 * header's address as the client's, so a client must not be able to write it.
 * `request.ip` is the socket's peer, or the client named by a proxy the gateway trusts.
 */
function headersForService(
  request: Pick<FastifyRequest, 'ip' | 'id' | 'traceparent'>,
  headers: IncomingHttpHeaders,
): IncomingHttpHeaders {
  const forwarded = { ...headers };
  for (const name of Object.keys(forwarded)) if (FORWARDING_HEADERS.has(name.toLowerCase())) delete forwarded[name];
  return { ...forwarded, 'x-forwarded-for': request.ip, 'x-request-id': request.id, traceparent: request.traceparent };
}

const FORWARDING_HEADERS = new Set([
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
]);

/** A service's /readyz; with the token, so that a service on another host shows the gateway its details. */
async function readinessOf(url: string, metricsToken: string | undefined): Promise<{ ok: boolean; detail: unknown }> {
  try {
    const response = await request(`${url}/readyz`, {
      headersTimeout: 2_000,
      bodyTimeout: 2_000,
      headers: metricsToken ? { authorization: `Bearer ${metricsToken}` } : {},
    });
    const body = await response.body.json();
    return { ok: response.statusCode === 200, detail: body };
  } catch (error) {
    return { ok: false, detail: `unreachable: ${(error as Error).message}` };
  }
}

/** What the gateway reads of a service's OpenAPI document. */
interface OpenApiDocument {
  paths?: Record<string, unknown>;
  components?: Record<string, Record<string, unknown>>;
}

/** One OpenAPI document from the services' own; a service that is down is left out. */
async function mergeOpenApiDocuments(urls: string[]): Promise<OpenApiDocument & Record<string, unknown>> {
  const documents = await Promise.all(
    urls.map(async (url) => {
      try {
        const response = await request(`${url}/docs/json`, { headersTimeout: 2_000 });
        return response.statusCode === 200 ? ((await response.body.json()) as OpenApiDocument) : undefined;
      } catch {
        return undefined;
      }
    }),
  );
  const merged = {
    openapi: '3.0.3',
    info: { title: 'Defect Control', version: '1.0.0', description: 'Defect tracker for construction projects' },
    paths: {} as Record<string, unknown>,
    components: { schemas: {}, securitySchemes: {} } as Record<string, Record<string, unknown>>,
  };
  for (const document of documents) {
    if (!document) continue;
    Object.assign(merged.paths, document.paths);
    for (const [section, entries] of Object.entries(document.components ?? {})) {
      merged.components[section] = { ...merged.components[section], ...entries };
    }
  }
  return merged;
}
