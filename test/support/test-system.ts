import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startAllInOne } from '../../src/all-in-one.ts';
import { loadConfig } from '../../src/platform/config.ts';
import type { RunningHost } from '../../src/platform/service-host.ts';
import { createApiClient, type ApiClient } from './api-client.ts';
import { deleteQueues } from './broker.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL, TEST_POSTGRES_URL } from './environment.ts';
import { freePort } from './free-port.ts';
import { captureLogs, type LogCapture } from './log-capture.ts';

export type Mode = 'postgres' | 'embedded';
export const MODES: Mode[] = ['postgres', 'embedded'];

export interface TestSystem {
  mode: Mode;
  url: string;
  host: RunningHost;
  api: ApiClient;
  logs: LogCapture;
  env: Record<string, string>;
  /** Stops the system and removes its database (unless keepData). */
  close(options?: { keepData?: boolean }): Promise<void>;
}

export interface TestSystemOptions {
  mode: Mode;
  /** Extra or overriding environment (e.g. AMQP_URL through a proxy). */
  env?: Record<string, string>;
  /** Reuse the database or data directory of an earlier system (restart tests). */
  reuse?: { DATABASE_URL?: string; DATA_DIR: string };
}

/**
 * The all-in-one system as `npm start` runs it, on a free port: PostgreSQL (a database of
 * its own) and RabbitMQ in postgres mode, PGlite and the in-process transport in embedded.
 */
export async function startTestSystem(options: TestSystemOptions): Promise<TestSystem> {
  const port = await freePort();
  const dataDir = options.reuse?.DATA_DIR ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'defect-control-test-')));
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DEMO_USER: 'testuser:123456',
    ADMIN_USER: 'admin:admin-secret',
    LOG_LEVEL: 'info',
    // Tests register many users from 127.0.0.1; the registration limit has its own test.
    REGISTRATIONS_PER_ADDRESS: '100000',
  };
  if (options.mode === 'postgres') {
    env.DATABASE_URL = options.reuse?.DATABASE_URL ?? `${TEST_POSTGRES_URL}/dc_test_${process.pid}_${Date.now()}`;
    env.AMQP_URL = TEST_AMQP_URL;
    if (!options.reuse) await deleteQueues(SERVICE_QUEUES);
  }
  Object.assign(env, options.env);
  const logs = captureLogs();
  const host = await startAllInOne(loadConfig(env), logs.log);
  const url = `http://127.0.0.1:${port}`;
  return {
    mode: options.mode,
    url,
    host,
    api: createApiClient(url),
    logs,
    env,
    async close({ keepData = false } = {}) {
      await host.close();
      if (keepData) return;
      if (env.DATABASE_URL) await dropDatabase(env.DATABASE_URL);
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Drops a test's database, closing whatever still uses it. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = url.pathname.slice(1);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Polls until check returns a truthy value (eventual effects: events, projections). */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}
