import { Ajv, type AnySchema, type ErrorObject, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { FastifyValidationResult } from 'fastify/types/schema.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function createAjv(options: Options): Ajv {
  return addFormats(new Ajv({ allErrors: false, useDefaults: true, strict: false, ...options }));
}

// Bodies are taken as sent: a number in quotes is a wrong type, an unknown field an error
// (Fastify's defaults would coerce the one and silently drop the other).
const bodyAjv = createAjv({ coerceTypes: false, removeAdditional: false });
// Query strings and path parameters are text by nature: "?limit=10" must become 10.
const parameterAjv = createAjv({ coerceTypes: 'array', removeAdditional: false });

export const validatorCompiler: FastifySchemaCompiler<AnySchema> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : parameterAjv).compile(schema) as FastifyValidationResult;

/** One readable sentence per problem: where, and what is wrong. */
export function describeValidationErrors(errors: Array<Partial<ErrorObject>>, context: string) {
  return errors.map((error) => {
    const location = `${context}${error.instancePath ?? ''}`.replaceAll('/', '.');
    const params = (error.params ?? {}) as {
      additionalProperty?: string;
      missingProperty?: string;
      allowedValues?: unknown[];
    };
    if (error.keyword === 'additionalProperties') {
      return { loc: location, msg: `unknown field '${params.additionalProperty}'` };
    }
    if (error.keyword === 'required') {
      return { loc: `${location}.${params.missingProperty}`, msg: 'field required' };
    }
    if (error.keyword === 'enum') {
      return { loc: location, msg: `must be one of: ${(params.allowedValues ?? []).join(', ')}` };
    }
    return { loc: location, msg: error.message ?? 'is invalid' };
  });
}
