import { asyncApiRoutes } from './contracts/asyncapi-routes.ts';
import { createTokenVerifier } from './platform/auth/access-token.ts';
import type { Config } from './platform/config.ts';
import type { Logger } from './platform/logger.ts';
import { startHost } from './platform/service-host.ts';
import { createAuthModule } from './services/auth/auth-module.ts';
import { createDeadLettersModule } from './services/dead-letters/dead-letters-module.ts';
import { loadSigningKeys } from './services/auth/signing-keys.ts';
import { createDefectsModule } from './services/defects/defects-module.ts';
import { createEventLogModule } from './services/event-log/event-log-module.ts';
import { createNotificationsModule } from './services/notifications/notifications-module.ts';
import { createProjectsModule } from './services/projects/projects-module.ts';

export const DEFAULT_PORT = 8000;
const ALL_IN_ONE_POOL_SIZE = 20;

/** Every service in one process behind one port: what `npm start` runs. */
export async function startAllInOne(config: Config, log: Logger) {
  const port = config.PORT ?? DEFAULT_PORT;
  const keys = await loadSigningKeys({ privateKeyPem: config.JWT_PRIVATE_KEY, dataDir: config.DATA_DIR });
  return startHost({
    config,
    log,
    name: 'all-in-one',
    port,
    verifyToken: createTokenVerifier(keys.publicKey),
    // Six services' requests and consumers share this one pool (apart, each has its own):
    // 20 took a third more writes than 10 in `npm run bench`; 32 no more than 20, with
    // more memory.
    defaultPoolSize: ALL_IN_ONE_POOL_SIZE,
    modules: (deps) => {
      const projects = createProjectsModule(deps);
      return [
        createAuthModule({ ...deps, keys }),
        projects,
        // Defects ask the projects module in this process, not its own HTTP port, about a
        // project or a membership whose event has not arrived yet.
        createDefectsModule({
          ...deps,
          lookup: {
            project: (id, actor) => projects.projects.findVisible(id, actor.user),
            isMember: (projectId, userId, actor) =>
              projects.projects
                .findVisible(projectId, actor.user)
                .then((project) => project !== undefined && projects.projects.isMember(projectId, userId)),
          },
        }),
        createNotificationsModule(deps),
        createEventLogModule(deps),
        createDeadLettersModule(deps),
        // The event contract's AsyncAPI document; no tables.
        { name: 'contract', migrations: [], routes: asyncApiRoutes },
      ];
    },
  });
}
