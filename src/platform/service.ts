import type { TokenVerifier } from './auth/access-token.ts';
import type { TokenRevocations } from './auth/token-revocations.ts';
import type { Config } from './config.ts';
import type { Database } from './db/database.ts';
import type { Migration } from './db/migrate.ts';
import type { BatchOptions, EventHandlers } from './events/event-consumer.ts';
import type { Outbox } from './events/outbox.ts';
import type { EventTransport } from './events/transport.ts';
import type { HttpApp } from './http/http-app.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics/metrics.ts';

/** What the host gives every service. */
export interface ServiceDeps {
  config: Config;
  db: Database;
  transport: EventTransport;
  log: Logger;
  /** Rejects revoked tokens too. */
  verifyToken: TokenVerifier;
  /** What this process knows of revoked tokens; `onRevoked` tells when a user's tokens end. */
  revocations: TokenRevocations;
  /** The process's metrics: a service may register its own on `metrics.registry`. */
  metrics: Metrics;
}

export interface ConsumerDefinition {
  name: string;
  handlers?: EventHandlers;
  batch?: BatchOptions;
  prefetch?: number;
  /** See EventConsumerOptions. */
  maxEventsPerTransaction?: number;
}

/**
 * A service as the host runs it, alone in its process or beside the others:
 * its schema's migrations, its routes, the outbox it publishes from, what it consumes.
 */
export interface ServiceModule {
  /** Also its PostgreSQL schema. */
  name: string;
  migrations: Migration[];
  routes(app: HttpApp): Promise<void>;
  outbox?: Outbox;
  consumers?: ConsumerDefinition[];
  /** Runs after migrations, before the port opens (seed data, caches, own subscriptions). */
  start?(): Promise<void>;
  /** Runs on shutdown, after the port closed. */
  close?(): Promise<void>;
}
