import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasPgCode, PG_CHARACTER_NOT_IN_REPERTOIRE } from '../db/pg-errors.ts';
import { internalError, validationFailed } from '../errors/common-errors.ts';
import { DomainError } from '../errors/domain-error.ts';
import { describeValidationErrors } from './validation.ts';

/**
 * Every error leaves as JSON with a human-readable `detail` (what FastAPI clients read)
 * plus RFC 9457 problem fields. Nothing here knows any service.
 */
export function handleError(error: FastifyError | DomainError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof DomainError) {
    if (error.statusCode === 401) reply.header('www-authenticate', 'Bearer');
    // A limit's error carries how long to wait (seconds); clients and proxies read the header.
    if (error.statusCode === 429 && typeof error.extra.retry_after === 'number') {
      reply.header('retry-after', String(error.extra.retry_after));
    }
    return sendError(reply, error);
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const errors = describeValidationErrors(fastifyError.validation, fastifyError.validationContext ?? 'body');
    const detail = errors.map((problem) => `${problem.loc}: ${problem.msg}`).join('; ');
    return sendError(reply, validationFailed(`Invalid request: ${detail}`, { errors }));
  }
  if (hasPgCode(error, PG_CHARACTER_NOT_IN_REPERTOIRE)) {
    return sendError(reply, validationFailed('Invalid request: text must not contain the NUL character (\\u0000)'));
  }
  const status = fastifyError.statusCode;
  if (status && status >= 400 && status < 500) {
    return sendProblem(reply, status, fastifyError.code ?? 'BAD_REQUEST', clientErrorDetail(fastifyError));
  }
  if (status && [502, 503, 504].includes(status)) {
    request.log.warn({ err: error }, 'upstream unavailable');
    return sendProblem(
      reply,
      status,
      fastifyError.code ?? 'UPSTREAM_UNAVAILABLE',
      `Service unavailable: ${fastifyError.message}`,
    );
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendError(reply, internalError());
}

/** A declared error as the response: its status, code, message and extra fields. */
export function sendError(reply: FastifyReply, error: DomainError) {
  return sendProblem(reply, error.statusCode, error.code, error.message, error.extra);
}

function clientErrorDetail(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return `Malformed JSON body: ${error.message}`;
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'Request body is too large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return `Unsupported content type: ${error.message}`;
    default:
      return error.message;
  }
}

function sendProblem(
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
) {
  return reply
    .code(status)
    .type('application/problem+json; charset=utf-8')
    .send({
      detail,
      status,
      title: titleOf(status),
      code,
      ...extra,
      instance: reply.request.url,
      request_id: reply.request.id,
    });
}

function titleOf(status: number): string {
  const titles: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    409: 'Conflict',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    422: 'Unprocessable Content',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    503: 'Service Unavailable',
  };
  return titles[status] ?? 'Error';
}
