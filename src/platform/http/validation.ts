import { Ajv, type ErrorObject, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function createAjv(options: Options): Ajv {
  return addFormats(new Ajv({ allErrors: false, useDefaults: true, strict: false, ...options }));
}

// Bodies are taken as sent: a number in quotes is a wrong type, an unknown field an error
// (Fastify's defaults would coerce the one and silently drop the other).
const bodyAjv = createAjv({ coerceTypes: false, removeAdditional: false });
// Query strings and path parameters are text by nature: "?limit=10" must become 10.
const parameterAjv = createAjv({ coerceTypes: 'array', removeAdditional: false });

export const validatorCompiler: FastifySchemaCompiler<any> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : parameterAjv).compile(schema) as any;

/** One readable sentence per problem: where, and what is wrong. */
export function describeValidationErrors(errors: ErrorObject[] | Array<Record<string, any>>, context: string) {
  return errors.map((error: any) => {
    const location = `${context}${error.instancePath ?? ''}`.replaceAll('/', '.');
    if (error.keyword === 'additionalProperties') {
      return { loc: location, msg: `unknown field '${error.params.additionalProperty}'` };
    }
    if (error.keyword === 'required') {
      return { loc: `${location}.${error.params.missingProperty}`, msg: 'field required' };
    }
    if (error.keyword === 'enum') {
      return { loc: location, msg: `must be one of: ${error.params.allowedValues.join(', ')}` };
    }
    return { loc: location, msg: error.message ?? 'is invalid' };
  });
}
