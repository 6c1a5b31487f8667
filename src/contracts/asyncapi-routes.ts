import { stringify } from 'yaml';
import type { HttpApp } from '../platform/http/http-app.ts';
import { asyncApiDocument } from './asyncapi.ts';

/** GET /asyncapi.yaml and /asyncapi.json: the event contract, on the gateway and the all-in-one process. */
export async function asyncApiRoutes(app: HttpApp): Promise<void> {
  const document = await asyncApiDocument();
  const yaml = stringify(document, { lineWidth: 0 });
  const json = JSON.stringify(document);
  const schema = { hide: true };
  app.get('/asyncapi.yaml', { schema }, async (_request, reply) =>
    reply.type('application/yaml; charset=utf-8').send(yaml),
  );
  app.get('/asyncapi.json', { schema }, async (_request, reply) =>
    reply.type('application/json; charset=utf-8').send(json),
  );
}
