import type { ServiceDeps, ServiceModule } from '../../platform/service.ts';
import { createOutbox } from '../../platform/events/outbox.ts';
import { createAuthService } from './auth-service.ts';
import { authMigrations } from './migrations.ts';
import { authRoutes } from './routes.ts';
import type { SigningKeys } from './signing-keys.ts';

/** Users, passwords and tokens. The only service that holds the signing key. */
export function createAuthModule(deps: ServiceDeps & { keys: SigningKeys }): ServiceModule {
  const outbox = createOutbox({ db: deps.db, schema: 'auth' });
  const auth = createAuthService({
    db: deps.db,
    outbox,
    keys: deps.keys,
    tokenTtlSeconds: deps.config.ACCESS_TOKEN_TTL_SECONDS,
    log: deps.log,
  });
  return {
    name: 'auth',
    migrations: authMigrations,
    outbox,
    routes: authRoutes(auth),
    async start() {
      if (deps.config.DEMO_USER) await auth.ensureUser(deps.config.DEMO_USER, 'manager');
      if (deps.config.ADMIN_USER) await auth.ensureUser(deps.config.ADMIN_USER, 'admin');
    },
  };
}
