import { tokenVerifierFromConfig } from '../../platform/auth/access-token.ts';
import { runMain } from '../../platform/main-entry.ts';
import { startHost } from '../../platform/service-host.ts';
import { createEventLogModule } from './event-log-module.ts';

runMain('event-log', async (config, log) =>
  startHost({
    config,
    log,
    name: 'event-log',
    port: config.PORT ?? 8005,
    verifyToken: await tokenVerifierFromConfig(config),
    modules: (deps) => [createEventLogModule(deps)],
  }),
);
