import { Counter } from 'prom-client';
import type { ServiceDeps, ServiceModule } from '../../platform/service.ts';
import { CONSUMER_NAMES } from '../consumer-names.ts';
import { createMembershipCopy } from '../membership-copy.ts';
import { createOutbox } from '../../platform/events/outbox.ts';
import { createPostgresAttemptCounter } from './attempt-counter.ts';
import { createAuthService } from './auth-service.ts';
import { authMigrations } from './migrations.ts';
import { authRoutes } from './routes.ts';
import { createSignInThrottle } from './sign-in-throttle.ts';
import type { SigningKeys } from './signing-keys.ts';

/** Users, passwords and tokens. The only service that holds the signing key. */
export function createAuthModule(deps: ServiceDeps & { keys: SigningKeys }): ServiceModule {
  const { config } = deps;
  const outbox = createOutbox({ db: deps.db, schema: 'auth' });
  const metrics = authMetrics(deps);
  const throttle = createSignInThrottle(
    createPostgresAttemptCounter(deps.db),
    {
      failuresPerUsername: config.SIGN_IN_MAX_FAILURES_PER_USERNAME,
      failuresPerAddress: config.SIGN_IN_MAX_FAILURES_PER_ADDRESS,
      failureWindowMs: config.signInFailureWindowMs,
      registrationsPerAddress: config.REGISTRATIONS_PER_ADDRESS,
      registrationWindowMs: config.registrationWindowMs,
    },
    (limit) => metrics.throttled.inc({ limit }),
  );
  const members = createMembershipCopy('auth');
  const auth = createAuthService({
    members,
    db: deps.db,
    outbox,
    keys: deps.keys,
    tokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    log: deps.log,
    throttle,
    revocations: deps.revocations,
    onHashing: (operation) => metrics.passwordHashes.inc({ operation }),
  });
  return {
    name: 'auth',
    migrations: authMigrations,
    outbox,
    routes: authRoutes(auth),
    // Who shares a project with whom decides which users a user may list (decision 008).
    consumers: [{ name: CONSUMER_NAMES.authProjectMembers, handlers: members.handlers }],
    async start() {
      if (config.DEMO_USER) await auth.ensureUser(config.DEMO_USER, 'manager');
      // The demo user is the one exception to the password rules (embedded mode's `123456`).
      if (config.ADMIN_USER) await auth.ensureUser(config.ADMIN_USER, 'admin', { checkPassword: 'ADMIN_USER' });
    },
  };
}

/** Auth's own metrics, on the process's registry (docs/monitoring.md). */
function authMetrics(deps: Pick<ServiceDeps, 'metrics'>) {
  const registers = [deps.metrics.registry];
  return {
    passwordHashes: new Counter({
      name: 'auth_password_hashes_total',
      help: 'argon2 computations: verify (sign-in, password change) and hash (new password)',
      labelNames: ['operation'],
      registers,
    }),
    throttled: new Counter({
      name: 'auth_throttled_total',
      help: 'Sign-ins and registrations refused with 429, by the limit that refused them',
      labelNames: ['limit'],
      registers,
    }),
  };
}
