import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { buildGateway } from '../../src/services/gateway/gateway.ts';
import type { HttpApp } from '../../src/platform/http/http-app.ts';
import type { TestUser } from '../support/api-client.ts';
import { connectClient, holdLock } from '../support/crash-harness.ts';
import { freePort } from '../support/free-port.ts';
import { captureLogs } from '../support/log-capture.ts';
import { parsePrometheusText } from '../support/metrics.ts';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

const TOKEN = 'operator-token-0123456789abcdef';
const REFRESH_MS = 1_000;

/**
 * An address of this machine that is not loopback: a request to it comes from it, so the
 * server sees a non-loopback peer without trusting any forwarded-for header.
 */
const outsideAddress = Object.values(os.networkInterfaces())
  .flat()
  .find((entry) => entry && entry.family === 'IPv4' && !entry.internal)?.address;

interface ReadinessBody {
  status: string;
  checks: Array<{ name: string; ok: boolean; detail?: unknown }>;
}

const get = async (url: string, token?: string) => {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
};

describe('operator endpoints: /metrics behind METRICS_TOKEN and cached, /readyz details for loopback or the token', () => {
  let system: TestSystem;
  let gateway: HttpApp;
  let gatewayPort: number;
  let manager: TestUser;
  let admin: pg.Client;
  const port = () => new URL(system.url).port;
  const scrape = async () => {
    const response = await get(`${system.url}/metrics`, TOKEN);
    assert.equal(response.status, 200, response.text);
    const samples = parsePrometheusText(response.text);
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples
        .filter((sample) => sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v))
        .reduce((sum, sample) => sum + sample.value, 0);
    return { samples, value };
  };

  before(async () => {
    system = await startTestSystem({
      mode: 'postgres',
      env: {
        METRICS_TOKEN: TOKEN,
        METRICS_REFRESH_INTERVAL: `${REFRESH_MS}ms`,
        // Every interface, so that the outside address reaches it; a small pool, so that
        // scrapes holding connections would starve requests at once.
        HOST: '0.0.0.0',
        DATABASE_POOL_SIZE: '4',
      },
    });
    manager = await system.api.createUser('manager');
    admin = await connectClient(system.env.DATABASE_URL);
    gatewayPort = await freePort();
    gateway = await buildGateway({
      log: captureLogs().log,
      upstreams: { auth: system.url, projects: system.url, defects: system.url, events: system.url },
      metricsToken: TOKEN,
    });
    await gateway.listen({ host: '0.0.0.0', port: gatewayPort });
  });
  after(async () => {
    await gateway?.close();
    await admin?.end();
    await system?.close();
  });

  it('/metrics of the all-in-one process and of the gateway: 401 with a detail without the token or with a wrong one, 200 with it', async () => {
    for (const base of [system.url, `http://127.0.0.1:${gatewayPort}`]) {
      for (const token of [undefined, 'wrong-token-0123456789abcdef', TOKEN.slice(0, -1)]) {
        const refused = await get(`${base}/metrics`, token);
        assert.equal(refused.status, 401, `${base} with ${token}`);
        assert.equal(refused.json().code, 'UNAUTHENTICATED');
        assert.match(refused.json().detail, /METRICS_TOKEN/);
        assert.equal(refused.headers.get('www-authenticate'), 'Bearer');
        assert.ok(!refused.text.includes('http_requests_total'), 'no metric leaks with the refusal');
      }
      const served = await get(`${base}/metrics`, TOKEN);
      assert.equal(served.status, 200);
      assert.match(served.text, /^process_resident_memory_bytes /m);
    }
  });

  it('a flood of scrapes reads the outbox and dead-letter counts at most once per METRICS_REFRESH_INTERVAL', async () => {
    const first = await scrape();
    assert.ok(
      first.samples.some((sample) => sample.name === 'metrics_state_reads_total'),
      'the reads are counted',
    );
    const started = Date.now();
    const flood = await Promise.all(Array.from({ length: 100 }, () => scrape()));
    const last = await scrape();
    const intervals = Math.ceil((Date.now() - started) / REFRESH_MS);
    const reads = last.value('metrics_state_reads_total') - first.value('metrics_state_reads_total');
    assert.ok(reads <= intervals + 1, `${reads} reads for 101 scrapes over ${intervals} interval(s)`);
    for (const snapshot of flood) assert.equal(snapshot.value('outbox_pending_events', { service: 'projects' }), 0);
    // And the counter does move once the interval is over: a reading is not kept for ever.
    await eventually(
      async () => (await scrape()).value('metrics_state_reads_total') > last.value('metrics_state_reads_total'),
      10 * REFRESH_MS,
      'a new reading after the interval',
    );
  });

  it('with the database holding the outbox query, scrapes answer within a second (NaN), one query waits, and requests are still served', async () => {
    const lock = await holdLock(system.env.DATABASE_URL, 'LOCK TABLE auth.outbox IN ACCESS EXCLUSIVE MODE');
    try {
      await eventually(
        async () => Number.isNaN((await scrape()).value('outbox_pending_events', { service: 'auth' })),
        10 * REFRESH_MS,
        'a reading stuck behind the lock, shown as NaN',
      );
      const [scrapes, projects] = await Promise.all([
        Promise.all(Array.from({ length: 40 }, () => scrape())),
        system.api.get('/v1/projects', manager.token),
      ]);
      assert.equal(projects.status, 200, 'a request still gets a database connection');
      for (const snapshot of scrapes)
        assert.ok(Number.isNaN(snapshot.value('outbox_pending_events', { service: 'auth' })));
      const { rows } = await admin.query<{ waiting: number }>(
        `SELECT count(*)::int AS waiting FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%count(*)::int AS pending%'`,
      );
      assert.equal(rows[0].waiting, 1, 'one reading in flight, not one per scrape');
    } finally {
      await lock.release();
    }
    await eventually(
      async () => (await scrape()).value('outbox_pending_events', { service: 'auth' }) === 0,
      10 * REFRESH_MS,
      'the reading back once the lock is gone',
    );
  });

  it('/readyz from loopback shows each check with its detail', async () => {
    const body = (await get(`${system.url}/readyz`)).json() as ReadinessBody;
    assert.equal(body.status, 'ready');
    const database = body.checks.find((check) => check.name === 'database');
    assert.deepEqual(database, { name: 'database', ok: true, detail: 'PostgreSQL' });
    const gatewayBody = (await get(`http://127.0.0.1:${gatewayPort}/readyz`)).json() as ReadinessBody;
    assert.deepEqual(
      (gatewayBody.checks[0].detail as ReadinessBody).checks.find((check) => check.name === 'database'),
      database,
      "the gateway passes on a service's details",
    );
  });

  it('/readyz from another address: names and ok flags only, the details with the token (all-in-one and gateway)', async (t) => {
    if (!outsideAddress) {
      t.skip('this machine has no non-loopback IPv4 address to call from');
      return;
    }
    for (const base of [`http://${outsideAddress}:${port()}`, `http://${outsideAddress}:${gatewayPort}`]) {
      const plain = await get(`${base}/readyz`);
      assert.equal(plain.status, 200);
      const body = plain.json() as ReadinessBody;
      assert.equal(body.status, 'ready');
      assert.ok(body.checks.length >= 3, plain.text);
      for (const check of body.checks) assert.deepEqual(Object.keys(check).sort(), ['name', 'ok'], plain.text);
      assert.ok(!/PostgreSQL|RabbitMQ|outbox /.test(plain.text), `no detail text: ${plain.text}`);

      for (const wrong of ['wrong-token-0123456789abcdef', undefined]) {
        assert.ok(!('detail' in (await get(`${base}/readyz`, wrong)).json().checks[0]));
      }
      const withToken = (await get(`${base}/readyz`, TOKEN)).json() as ReadinessBody;
      assert.deepEqual(
        withToken.checks.map((check) => check.name),
        body.checks.map((check) => check.name),
      );
      for (const check of withToken.checks) assert.ok(check.detail !== undefined, JSON.stringify(check));
    }
  });
});
