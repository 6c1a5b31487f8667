/**
 * npm run bench [-- --quick]: the system against the raw limits of this machine, in the same
 * run, alternating, so that ratios hold on a noisy machine. Prints a table and writes
 * bench/results/latest.json. Needs PostgreSQL and RabbitMQ (as the tests do).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { Connection } from 'rabbitmq-client';
import { Pool } from 'undici';
import { createApiClient } from '../test/support/api-client.ts';
import { deleteQueues } from '../test/support/broker.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL, TEST_POSTGRES_URL } from '../test/support/environment.ts';
import { CONSUMER_NAMES } from '../src/services/consumer-names.ts';
import { freePort } from '../test/support/free-port.ts';
import { startProcess, type ServiceProcess } from '../test/support/processes.ts';
import { createRelayBench } from './relay-bench.ts';

const quick = process.argv.includes('--quick');
const PLAN = quick
  ? { rounds: 2, writeSeconds: 2, relayEvents: 10_000, latencySeconds: 5 }
  : { rounds: 3, writeSeconds: 10, relayEvents: 50_000, latencySeconds: 20 };
const CONNECTIONS = 32;
const LATENCY_RATE = 200;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (value: number, digits = 2) => Number(value.toFixed(digits));
const log = (message: string) => process.stderr.write(`${message}\n`);

interface WriteRun {
  rps: number;
  p99: number;
  errors: number;
}

async function writeLoad(
  url: string,
  token: string | undefined,
  seconds: number,
  projectId: number,
): Promise<WriteRun> {
  const result = await autocannon({
    url: `${url}/v1/defects`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: seconds,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ project_id: projectId, title: 'Трещина в опоре' }),
  });
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.non2xx + result.errors };
}

function residentMemoryMb(pid: number): Promise<number> {
  return fs.readFile(`/proc/${pid}/status`, 'utf8').then((status) => Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024);
}

async function createDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: `${TEST_POSTGRES_URL}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return `${TEST_POSTGRES_URL}/${name}`;
}

/** The all-in-one system as `npm start` runs it, in its own process, with a signed-in user and a project. */
async function startSystem(env: Record<string, string>) {
  const system = await startProcess(
    'src/main.ts',
    { LOG_LEVEL: 'info', DEMO_USER: 'bench:bench-password', ...env },
    await freePort(),
  );
  const api = createApiClient(system.url);
  const token = await api.login('bench', 'bench-password');
  const project = await api.post('/v1/projects', { name: 'Бенчмарк' }, token);
  return { process: system, token, projectId: project.body.id as number };
}

/**
 * Until the system's consumers have caught up (their queues empty): a baseline round must
 * not share the machine with the system still digesting the previous round.
 */
async function waitUntilConsumersIdle(timeoutMs = 60_000) {
  const connection = new Connection({ url: TEST_AMQP_URL, connectionName: 'bench-idle' });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      let waiting = 0;
      for (const queue of Object.values(CONSUMER_NAMES))
        waiting += (await connection.queueDeclare({ queue, durable: true })).messageCount;
      if (waiting === 0 || Date.now() > deadline) return waiting;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await connection.close();
  }
}

/**
 * Writes at an even pace, one every 1000/rate ms, not waiting for the answers (an open
 * loop, so a slow answer does not delay the next write). autocannon's rate limit sends each
 * second's quota as fast as it can at the start of the second: its "200 writes/s" were
 * bursts of 200 at full concurrency, and the latency measured those bursts.
 */
async function pacedWrites(
  system: { process: ServiceProcess; token: string; projectId: number },
  rate: number,
  seconds: number,
) {
  const pool = new Pool(system.process.url, { connections: 16 });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${system.token}` };
  const body = JSON.stringify({ project_id: system.projectId, title: 'Задержка' });
  const writes: Array<Promise<boolean>> = [];
  const started = performance.now();
  for (let index = 0; index < rate * seconds; index += 1) {
    const due = started + (index * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    writes.push(
      pool.request({ path: '/v1/defects', method: 'POST', headers, body }).then(
        async (response) => {
          await response.body.dump();
          return response.statusCode === 201;
        },
        () => false,
      ),
    );
  }
  const results = await Promise.all(writes);
  await pool.close();
  return { sent: results.length, failed: results.filter((ok) => !ok).length };
}

/** Commit → a consumer's handler: the event's timestamp (taken as the change is made, just before its commit) to receipt. */
async function measureLatency(system: { process: ServiceProcess; token: string; projectId: number }, seconds: number) {
  const connection = new Connection({ url: TEST_AMQP_URL, connectionName: 'bench-latency' });
  const delays: number[] = [];
  const consumer = connection.createConsumer(
    {
      queue: '',
      queueOptions: { exclusive: true, autoDelete: true },
      queueBindings: [{ exchange: 'events', routingKey: 'defect.created' }],
    },
    async (message) => {
      const timestamp = (message.body as { timestamp: string }).timestamp;
      const committedAt = Date.parse(`${timestamp.slice(0, 23)}Z`) + Number(timestamp.slice(23)) / 1000;
      delays.push(performance.timeOrigin + performance.now() - committedAt);
    },
  );
  await new Promise((resolve) => consumer.once('ready', resolve));
  const { sent, failed } = await pacedWrites(system, LATENCY_RATE, seconds);
  if (failed > 0) log(`  latency: ${failed} of ${sent} writes failed`);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  await consumer.close();
  await connection.close();
  const sorted = [...delays].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { count: delays.length, p50: at(0.5), p99: at(0.99) };
}

async function main() {
  const started = Date.now();
  log(
    `bench: ${quick ? 'quick' : 'full'} run on ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
  );
  await deleteQueues(SERVICE_QUEUES);
  const databaseUrl = await createDatabase('dc_bench');
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-bench-'));
  const system = await startSystem({ DATABASE_URL: databaseUrl, AMQP_URL: TEST_AMQP_URL, DATA_DIR: dataDir });
  const baseline = await startProcess('bench/baseline-server.ts', { DATABASE_URL: databaseUrl }, await freePort());
  const results: Record<string, Record<string, number>> = {};
  try {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const idleMb = await residentMemoryMb(system.process.child.pid!);

    // Before the write scenario: its backlog (consumers catching up) would be measured too.
    log('latency: 200 writes/s, commit to a consumer');
    const latency = await measureLatency(system, PLAN.latencySeconds);
    results.latency = { p50_ms: round(latency.p50), p99_ms: round(latency.p99), events: latency.count };

    log('write: system and baseline, alternating');
    await writeLoad(system.process.url, system.token, 1, system.projectId); // warm-up
    await writeLoad(baseline.url, undefined, 1, system.projectId);
    const writes: WriteRun[] = [];
    const baselines: WriteRun[] = [];
    for (let index = 0; index < PLAN.rounds; index += 1) {
      writes.push(await writeLoad(system.process.url, system.token, PLAN.writeSeconds, system.projectId));
      const backlog = await waitUntilConsumersIdle();
      if (backlog > 0) log(`  consumers still had ${backlog} messages after 60 s`);
      baselines.push(await writeLoad(baseline.url, undefined, PLAN.writeSeconds, system.projectId));
    }
    const loadedMb = await residentMemoryMb(system.process.child.pid!);
    const writeRps = median(writes.map((run) => run.rps));
    const baselineRps = median(baselines.map((run) => run.rps));
    results.write = {
      rps: round(writeRps, 0),
      p99_ms: median(writes.map((run) => run.p99)),
      baseline_rps: round(baselineRps, 0),
      ratio: round(writeRps / baselineRps),
      errors: writes.reduce((sum, run) => sum + run.errors, 0),
    };
    results.memory = { idle_mb: round(idleMb, 0), loaded_mb: round(loadedMb, 0) };

    log('relay: outbox to RabbitMQ against the bare client, alternating');
    const relayBench = await createRelayBench({ databaseUrl, amqpUrl: TEST_AMQP_URL, events: PLAN.relayEvents });
    const relayRuns: number[] = [];
    const relayBaselines: number[] = [];
    for (let index = 0; index < PLAN.rounds; index += 1) {
      relayRuns.push(await relayBench.runRelay());
      relayBaselines.push(await relayBench.runBaseline());
    }
    await relayBench.close();
    const relayEps = median(relayRuns);
    const relayBaseline = median(relayBaselines);
    results.relay = {
      eps: round(relayEps, 0),
      baseline_eps: round(relayBaseline, 0),
      ratio: round(relayEps / relayBaseline),
      events: PLAN.relayEvents,
    };
  } finally {
    await baseline.stop();
    await system.process.stop();
  }

  log('embedded: the write scenario on PGlite and the in-process transport');
  const embeddedDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-bench-embedded-'));
  const embedded = await startSystem({ DATA_DIR: embeddedDir });
  try {
    await writeLoad(embedded.process.url, embedded.token, 1, embedded.projectId);
    const runs: WriteRun[] = [];
    for (let index = 0; index < PLAN.rounds; index += 1)
      runs.push(await writeLoad(embedded.process.url, embedded.token, PLAN.writeSeconds, embedded.projectId));
    const rps = median(runs.map((run) => run.rps));
    results.embedded = {
      rps: round(rps, 0),
      ratio: round(rps / results.write.rps),
      p99_ms: median(runs.map((run) => run.p99)),
    };
  } finally {
    await embedded.process.stop();
    await fs.rm(embeddedDir, { recursive: true, force: true });
    await fs.rm(dataDir, { recursive: true, force: true });
  }

  const report = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    seconds: Math.round((Date.now() - started) / 1000),
    cpus: os.cpus().length,
    ...results,
  };
  await fs.mkdir(path.join(ROOT, 'bench/results'), { recursive: true });
  await fs.writeFile(path.join(ROOT, 'bench/results/latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  printTable(results);
  log(`bench: done in ${report.seconds} s; bench/results/latest.json written`);
}

function printTable(results: Record<string, Record<string, number>>) {
  const rows: Array<[string, string, string, string]> = [
    [
      'write',
      `${results.write.rps} req/s, p99 ${results.write.p99_ms} ms`,
      `${results.write.baseline_rps} req/s`,
      `ratio ${results.write.ratio} (target ≥ 0.5, p99 ≤ 50 ms)`,
    ],
    [
      'relay',
      `${results.relay.eps} events/s`,
      `${results.relay.baseline_eps} msg/s`,
      `ratio ${results.relay.ratio} (target ≥ 0.8)`,
    ],
    [
      'latency',
      `p50 ${results.latency.p50_ms} ms, p99 ${results.latency.p99_ms} ms`,
      '—',
      'target p50 ≤ 5 ms, p99 ≤ 25 ms',
    ],
    [
      'memory',
      `idle ${results.memory.idle_mb} MB, loaded ${results.memory.loaded_mb} MB`,
      '—',
      'target loaded ≤ 250 MB',
    ],
    [
      'embedded',
      `${results.embedded.rps} req/s, p99 ${results.embedded.p99_ms} ms`,
      `${results.write.rps} req/s (PostgreSQL)`,
      `ratio ${results.embedded.ratio}`,
    ],
  ];
  const widths = [0, 1, 2, 3].map((column) =>
    Math.max(...rows.map((row) => row[column].length), ['scenario', 'system', 'baseline', 'result'][column].length),
  );
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index])).join(' | ');
  process.stdout.write(
    `${line(['scenario', 'system', 'baseline', 'result'])}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}\n`,
  );
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
    process.exit(1);
  },
);
