import { tokenVerifierFromConfig, type TokenVerifier } from '../../platform/auth/access-token.ts';
import { runMain } from '../../platform/main-entry.ts';
import { startHost } from '../../platform/service-host.ts';
import { createNotificationsModule } from './notifications-module.ts';

/** It serves no authenticated route, so it needs neither AUTH_URL nor JWT_PUBLIC_KEY (but takes them). */
const rejectEveryToken: TokenVerifier = async () => {
  throw new Error('the notifications service has no authenticated routes');
};

runMain('notifications', async (config, log) =>
  startHost({
    config,
    log,
    name: 'notifications',
    port: config.PORT ?? 8004,
    verifyToken: config.AUTH_URL || config.JWT_PUBLIC_KEY ? await tokenVerifierFromConfig(config) : rejectEveryToken,
    modules: (deps) => [createNotificationsModule(deps)],
  }),
);
