import type { ServiceDeps, ServiceModule } from '../../platform/service.ts';
import { CONSUMER_NAMES } from '../consumer-names.ts';
import { createMembershipCopy } from '../membership-copy.ts';
import { createOutbox } from '../../platform/events/outbox.ts';
import { createAuthService } from './auth-service.ts';
import { authMigrations } from './migrations.ts';
import { authRoutes } from './routes.ts';
import type { SigningKeys } from './signing-keys.ts';

/** Users, passwords and tokens. The only service that holds the signing key. */
export function createAuthModule(deps: ServiceDeps & { keys: SigningKeys }): ServiceModule {
  const outbox = createOutbox({ db: deps.db, schema: 'auth' });
  const members = createMembershipCopy('auth');
  const auth = createAuthService({
    members,
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
    // Who shares a project with whom decides which users a user may list (decision 008).
    consumers: [{ name: CONSUMER_NAMES.authProjectMembers, handlers: members.handlers }],
    async start() {
      if (deps.config.DEMO_USER) await auth.ensureUser(deps.config.DEMO_USER, 'manager');
      if (deps.config.ADMIN_USER) await auth.ensureUser(deps.config.ADMIN_USER, 'admin');
    },
  };
}
