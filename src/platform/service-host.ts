import type { TokenVerifier } from './auth/access-token.ts';
import { createRevocationKeeper } from './auth/revocation-keeper.ts';
import { createTokenRevocations, rejectingRevoked } from './auth/token-revocations.ts';
import type { Config } from './config.ts';
import { connectDatabase, describeDatabase } from './db/connect.ts';
import type { Database } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import { createAmqpTransport } from './events/amqp/amqp-transport.ts';
import { startEventConsumer } from './events/event-consumer.ts';
import { createInProcessTransport } from './events/in-process/transport.ts';
import { createOutboxRelay, type OutboxRelay } from './events/relay/relay.ts';
import type { EventTransport, Subscription } from './events/transport.ts';
import { createHttpApp, type HttpApp } from './http/http-app.ts';
import type { Logger } from './logger.ts';
import { createMetrics } from './metrics/metrics.ts';
import { withTimeout } from './timeout.ts';
import type { ServiceDeps, ServiceModule } from './service.ts';

export interface HostOptions {
  config: Config;
  log: Logger;
  /** Names this process in logs, AMQP connection names and the OpenAPI title. */
  name: string;
  port: number;
  verifyToken: TokenVerifier;
  modules(deps: ServiceDeps): ServiceModule[] | Promise<ServiceModule[]>;
  /** The pool's size when DATABASE_POOL_SIZE is unset; 10 if not given. */
  defaultPoolSize?: number;
}

export interface RunningHost {
  app: HttpApp;
  db: Database;
  transport: EventTransport;
  relays: OutboxRelay[];
  url: string;
  close(): Promise<void>;
}

/**
 * Runs one or several services in this process: database and migrations, the event
 * transport, each outbox's relay, the consumers, and the HTTP routes on one port.
 */
export async function startHost(options: HostOptions): Promise<RunningHost> {
  const { config, log } = options;
  const poolSize = config.DATABASE_POOL_SIZE ?? options.defaultPoolSize ?? DEFAULT_POOL_SIZE;
  const db = await connectDatabase({ databaseUrl: config.DATABASE_URL, poolSize, dataDir: config.DATA_DIR });
  const transport: EventTransport = config.AMQP_URL
    ? createAmqpTransport({ url: config.AMQP_URL, log: log.child({ component: 'amqp' }), connectionName: options.name })
    : await createInProcessTransport({ db, log: log.child({ component: 'in-process-transport' }) });
  const metrics = createMetrics({ refreshMs: config.metricsRefreshMs });
  const revocations = createTokenRevocations();
  const verifyToken = rejectingRevoked(options.verifyToken, revocations);
  const deps: ServiceDeps = { config, db, transport, log, verifyToken, revocations, metrics };
  const modules = [...(await options.modules(deps))];
  // Every process learns of revoked tokens from the user.* events, kept in the schema of
  // the first service it runs (auth in the all-in-one process).
  if (modules.length > 0) {
    modules.push(
      createRevocationKeeper({
        schema: modules[0].name,
        db,
        revocations,
        log: log.child({ component: 'revocations' }),
      }),
    );
  }

  for (const module of modules) if (module.migrations.length > 0) await migrate(db, module.name, module.migrations);
  for (const module of modules) await module.start?.();

  const publishers = modules.filter((module) => module.outbox);
  // The relays get connections of their own: waiting behind requests and consumers in the
  // shared pool was most of the time from commit to broker under load. Each relay holds one
  // while it publishes; one more serves their status checks.
  const relayDb = config.DATABASE_URL
    ? await connectDatabase({
        databaseUrl: config.DATABASE_URL,
        poolSize: publishers.length + 1,
        dataDir: config.DATA_DIR,
      })
    : db;
  const relays = publishers.map((module) =>
    createOutboxRelay({
      db: relayDb,
      outbox: module.outbox!,
      transport,
      appId: module.name,
      log: log.child({ service: module.name }),
      metrics,
      confirmTimeoutMs: config.confirmTimeoutMs,
    }),
  );
  for (const module of publishers) metrics.watchOutbox(module.name, module.outbox!.schema, db);
  const app = await createHttpApp({
    log,
    metrics,
    title: `Defect Control — ${options.name}`,
    verifyToken,
    metricsToken: config.METRICS_TOKEN,
    trustedProxies: config.trustedProxies,
    readiness: [
      {
        name: 'database',
        check: () =>
          db.query('SELECT 1').then(
            () => ({ ok: true, detail: db.kind === 'embedded' ? 'embedded PGlite' : 'PostgreSQL' }),
            (error: Error) => ({ ok: false, detail: error.message }),
          ),
      },
      { name: 'broker', check: () => transport.status() },
      ...relays.map((relay, index) => ({
        name: `outbox-relay:${publishers[index].name}`,
        check: () => relay.status(),
      })),
    ],
  });
  for (const module of modules) await app.register((scope) => module.routes(scope));

  for (const module of modules) {
    for (const consumer of module.consumers ?? []) metrics.watchDeadLetters(consumer.name, transport.deadLetters);
  }
  // Consumers first: their queues must exist before the first event is routed.
  const subscriptions: Subscription[] = modules.flatMap((module) =>
    (module.consumers ?? []).map((consumer) =>
      startEventConsumer({
        db,
        transport,
        log: log.child({ consumer: consumer.name }),
        schema: module.name,
        retryDelaysMs: config.retryDelaysMs,
        metrics,
        ...consumer,
      }),
    ),
  );
  await waitUntilReady(subscriptions, log);
  relays.forEach((relay) => relay.start());

  const address = await app.listen({ host: config.HOST, port: options.port });
  log.info(
    `${options.name} listening on ${address} (database: ${describeDatabase(config.DATABASE_URL, config.DATA_DIR)}; ` +
      `events: ${config.AMQP_URL ? `RabbitMQ at ${new URL(config.AMQP_URL).host}` : 'in-process transport'})`,
  );

  let closing: Promise<void> | undefined;
  return {
    app,
    db,
    transport,
    relays,
    url: address.replace('0.0.0.0', '127.0.0.1'),
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await Promise.all(subscriptions.map((subscription) => subscription.close()));
        for (const module of modules) await module.close?.();
        await Promise.all(relays.map((relay) => relay.close()));
        await transport.close();
        if (relayDb !== db) await relayDb.close();
        await db.close();
      })()),
  };
}

const QUEUE_SETUP_WAIT_MS = 5_000;
const DEFAULT_POOL_SIZE = 10;

/** Bounded: with the broker down the service still starts; its queues come with the connection. */
async function waitUntilReady(subscriptions: Subscription[], log: Logger): Promise<void> {
  await withTimeout(Promise.all(subscriptions.map((subscription) => subscription.ready)), QUEUE_SETUP_WAIT_MS).catch(
    () => log.warn('consumer queues are not declared yet (broker unreachable?); starting anyway'),
  );
}

/** SIGTERM/SIGINT: stop taking work, finish what is in hand, exit. */
export function closeOnSignals(host: { close(): Promise<void> }, log: Logger): void {
  const shutdown = (signal: string) => {
    log.info({ signal }, 'shutting down');
    host.close().then(
      () => process.exit(0),
      (error) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
