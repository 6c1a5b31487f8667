import { randomUUID } from 'node:crypto';
import formBody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type RawServerDefault,
} from 'fastify';
import type { TokenVerifier } from '../auth/access-token.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { authGuard } from './auth-guard.ts';
import { routeNotFound } from '../errors/common-errors.ts';
import { handleError, sendError } from './error-handler.ts';
import { operatorAccess, type OperatorAccess } from './operator-access.ts';
import { continueTrace } from './trace-context.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** W3C traceparent of this request (the caller's trace continued, or a new one). */
    traceparent: string;
  }
}
import { validatorCompiler } from './validation.ts';

export type HttpApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface ReadinessCheck {
  name: string;
  check(): Promise<{ ok: boolean; detail: string }> | { ok: boolean; detail: string };
}

export interface HttpAppOptions {
  log: Logger;
  metrics: Metrics;
  title: string;
  verifyToken: TokenVerifier;
  readiness: ReadinessCheck[];
  /** METRICS_TOKEN: closes /metrics and opens /readyz details to non-loopback callers that send it. */
  metricsToken?: string;
  /** TRUSTED_PROXIES: see createBaseApp. */
  trustedProxies?: string[];
}

const OPERATIONS_ROUTES = new Set(['/metrics', '/healthz', '/readyz']);
const REQUEST_ID_PATTERN = /^[\w.:-]{1,128}$/;

/**
 * Fastify with what every process shares, the gateway included: request ids taken or
 * made, JSON problem errors, strict body validation, one log line per request.
 */
export function createBaseApp(
  log: Logger,
  metrics: Metrics,
  access: OperatorAccess = operatorAccess(undefined),
  trustedProxies: string[] = [],
): HttpApp {
  const app = Fastify({
    loggerInstance: log,
    // request.ip (the address sign-ins and registrations are counted by) is the socket's peer,
    // or, when that peer is one of TRUSTED_PROXIES, the nearest untrusted address in its
    // X-Forwarded-For. The operator endpoints read the socket itself (operator-access.ts).
    trustProxy: trustedProxies.length > 0 ? trustedProxies : false,
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: 256 * 1024,
    // The gateway sets the id or accepts the caller's, and every log line and event carries it.
    // genReqId reads and checks x-request-id itself: Fastify's requestIdHeader would take any value as sent.
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
    },
    // One line per request from our onResponse hook instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, routeNotFound(request.method, request.url.split('?')[0])),
  );
  app.decorateRequest('traceparent', '');
  app.addHook('onRequest', async (request, reply) => {
    request.traceparent = continueTrace(request.headers.traceparent);
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    if (OPERATIONS_ROUTES.has(request.routeOptions.url ?? '')) return; // scrapes and probes are not traffic
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    request.log.info(
      { method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request completed',
    );
  });
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    access.requireForMetrics(request);
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return app as unknown as HttpApp;
}

/**
 * The /readyz answer: 200 when every check is ok, else 503. The checks' `detail` (error
 * messages naming hosts, ports, queues) only for callers that may see it; others get each
 * check's name and ok flag.
 */
export function sendReadiness(
  reply: FastifyReply,
  checks: Array<{ name: string; ok: boolean; detail: unknown }>,
  withDetails: boolean,
) {
  const ready = checks.every((check) => check.ok);
  const shown = withDetails ? checks : checks.map(({ name, ok }) => ({ name, ok }));
  return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: shown });
}

/** A service's app: the base, OpenAPI at /docs, the auth guard, readiness. It does not listen. */
export async function createHttpApp(options: HttpAppOptions): Promise<HttpApp> {
  const access = operatorAccess(options.metricsToken);
  const app = createBaseApp(options.log, options.metrics, access, options.trustedProxies);
  await app.register(formBody);
  await app.register(swagger, {
    openapi: {
      info: { title: options.title, version: '1.0.0', description: 'Defect tracker for construction projects' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(authGuard, { verifyToken: options.verifyToken });

  app.get('/readyz', { schema: { hide: true } }, async (request, reply) => {
    const results = await Promise.all(
      options.readiness.map(async (item) => ({ name: item.name, ...(await item.check()) })),
    );
    return sendReadiness(reply, results, access.maySeeDetails(request));
  });
  return app;
}
