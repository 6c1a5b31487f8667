import { Connection } from 'rabbitmq-client';
import { tokenVerifierFromConfig } from '../../platform/auth/access-token.ts';
import { createAmqpDeadLetters } from '../../platform/events/amqp/dead-letters.ts';
import { runMain } from '../../platform/main-entry.ts';
import { ALL_CONSUMERS } from '../consumer-names.ts';
import { createDeadLetterService } from '../dead-letters/dead-letter-service.ts';
import { buildGateway } from './gateway.ts';

runMain('gateway', async (config, log) => {
  const { AUTH_URL, PROJECTS_URL, DEFECTS_URL, EVENTS_URL } = config;
  if (!AUTH_URL || !PROJECTS_URL || !DEFECTS_URL || !EVENTS_URL) {
    throw new Error('The gateway needs AUTH_URL, PROJECTS_URL, DEFECTS_URL and EVENTS_URL: the services it routes to');
  }
  const broker = config.AMQP_URL ? new Connection({ url: config.AMQP_URL, connectionName: 'gateway' }) : undefined;
  broker?.on('error', (error) => log.warn({ err: error }, 'RabbitMQ connection error'));
  const app = await buildGateway({
    log,
    upstreams: { auth: AUTH_URL, projects: PROJECTS_URL, defects: DEFECTS_URL, events: EVENTS_URL },
    metricsToken: config.METRICS_TOKEN,
    trustedProxies: config.trustedProxies,
    deadLetters: broker && {
      service: createDeadLetterService({ queues: createAmqpDeadLetters(broker), consumers: ALL_CONSUMERS }),
      verifyToken: await tokenVerifierFromConfig(config),
    },
  });
  app.addHook('onClose', async () => broker?.close());
  const address = await app.listen({ host: config.HOST, port: config.PORT ?? 8000 });
  log.info(
    `gateway listening on ${address}, routing to auth ${AUTH_URL}, projects ${PROJECTS_URL}, defects ${DEFECTS_URL}, events ${EVENTS_URL}`,
  );
  return app;
});
