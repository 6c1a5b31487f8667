import { runMain } from '../../platform/main-entry.ts';
import { buildGateway } from './gateway.ts';

runMain('gateway', async (config, log) => {
  const { AUTH_URL, PROJECTS_URL, DEFECTS_URL } = config;
  if (!AUTH_URL || !PROJECTS_URL || !DEFECTS_URL) {
    throw new Error('The gateway needs AUTH_URL, PROJECTS_URL and DEFECTS_URL: the services it routes to');
  }
  const app = await buildGateway({ log, upstreams: { auth: AUTH_URL, projects: PROJECTS_URL, defects: DEFECTS_URL } });
  const address = await app.listen({ host: config.HOST, port: config.PORT ?? 8000 });
  log.info(`gateway listening on ${address}, routing to auth ${AUTH_URL}, projects ${PROJECTS_URL}, defects ${DEFECTS_URL}`);
  return app;
});
