import { tokenVerifierFromConfig } from '../../platform/auth/access-token.ts';
import { runMain } from '../../platform/main-entry.ts';
import { startHost } from '../../platform/service-host.ts';
import { createProjectsModule } from './projects-module.ts';

runMain('projects', async (config, log) =>
  startHost({
    config,
    log,
    name: 'projects',
    port: config.PORT ?? 8002,
    verifyToken: await tokenVerifierFromConfig(config),
    modules: (deps) => [createProjectsModule(deps)],
  }),
);
