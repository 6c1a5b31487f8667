import { Connection } from 'rabbitmq-client';
import { tokenVerifierFromConfig } from '../../platform/auth/access-token.ts';
import { listenForRevocations } from '../../platform/auth/revocation-listener.ts';
import { createTokenRevocations, rejectingRevoked } from '../../platform/auth/token-revocations.ts';
import { createAmqpDeadLetters } from '../../platform/events/amqp/dead-letters.ts';
import type { Logger } from '../../platform/logger.ts';
import { runMain } from '../../platform/main-entry.ts';
import { withTimeout } from '../../platform/timeout.ts';
import { ALL_CONSUMERS } from '../consumer-names.ts';
import { createDeadLetterService } from '../dead-letters/dead-letter-service.ts';
import { buildGateway } from './gateway.ts';

// Above runMain, which runs at once: a const below it would not be initialised yet.
const QUEUE_SETUP_WAIT_MS = 5_000;

/** Bounded, as the services' consumers: with the broker down the gateway still starts. */
async function waitForRevocationQueue(ready: Promise<void>, log: Logger): Promise<void> {
  await withTimeout(ready, QUEUE_SETUP_WAIT_MS).catch(() =>
    log.warn('token revocation queue is not declared yet (broker unreachable?); starting anyway'),
  );
}

runMain('gateway', async (config, log) => {
  const { AUTH_URL, PROJECTS_URL, DEFECTS_URL, EVENTS_URL } = config;
  if (!AUTH_URL || !PROJECTS_URL || !DEFECTS_URL || !EVENTS_URL) {
    throw new Error('The gateway needs AUTH_URL, PROJECTS_URL, DEFECTS_URL and EVENTS_URL: the services it routes to');
  }
  const broker = config.AMQP_URL ? new Connection({ url: config.AMQP_URL, connectionName: 'gateway' }) : undefined;
  broker?.on('error', (error) => log.warn({ err: error }, 'RabbitMQ connection error'));
  // The dead-letter API's tokens: refused once revoked, as in every service (decision 009).
  const revocations = createTokenRevocations();
  const revocationListener =
    broker && listenForRevocations({ connection: broker, revocations, log: log.child({ component: 'revocations' }) });
  if (revocationListener) await waitForRevocationQueue(revocationListener.ready, log);
  const app = await buildGateway({
    log,
    upstreams: { auth: AUTH_URL, projects: PROJECTS_URL, defects: DEFECTS_URL, events: EVENTS_URL },
    metricsToken: config.METRICS_TOKEN,
    trustedProxies: config.trustedProxies,
    deadLetters: broker && {
      service: createDeadLetterService({ queues: createAmqpDeadLetters(broker), consumers: ALL_CONSUMERS }),
      verifyToken: rejectingRevoked(await tokenVerifierFromConfig(config), revocations),
    },
  });
  app.addHook('onClose', async () => {
    await revocationListener?.close();
    await broker?.close();
  });
  const address = await app.listen({ host: config.HOST, port: config.PORT ?? 8000 });
  log.info(
    `gateway listening on ${address}, routing to auth ${AUTH_URL}, projects ${PROJECTS_URL}, defects ${DEFECTS_URL}, events ${EVENTS_URL}`,
  );
  return app;
});
