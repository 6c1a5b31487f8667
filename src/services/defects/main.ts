import { tokenVerifierFromConfig } from '../../platform/auth/access-token.ts';
import { runMain } from '../../platform/main-entry.ts';
import { startHost } from '../../platform/service-host.ts';
import { createDefectsModule } from './defects-module.ts';
import { projectLookupOverHttp } from './project-directory.ts';

runMain('defects', async (config, log) => {
  if (!config.PROJECTS_URL)
    throw new Error('Set PROJECTS_URL: the defects service asks it about projects it has not heard of yet');
  return startHost({
    config,
    log,
    name: 'defects',
    port: config.PORT ?? 8003,
    verifyToken: await tokenVerifierFromConfig(config),
    modules: (deps) => [createDefectsModule({ ...deps, lookup: projectLookupOverHttp(config.PROJECTS_URL!) })],
  });
});
