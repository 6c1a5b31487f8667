import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApiClient } from '../support/api-client.ts';
import { deleteQueues } from '../support/broker.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL, TEST_POSTGRES_URL } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { dropDatabase, eventually } from '../support/test-system.ts';

// The gateway and auth in processes of their own: the gateway's dead-letter API refuses a
// revoked token, and the client address that sign-ins are counted by. On Linux all of 127.0.0.0/8 is this machine, so a client can connect from
// 127.0.0.2, 127.0.0.3, …: distinct peer addresses without a second host. Auth trusts
// X-Forwarded-For from 127.0.0.1 only (where the gateway's connections come from); a second
// auth process, on the same database, trusts no proxy.
const LIMIT = 3;
const REFUSED_FROM_THE_4TH = [...Array(LIMIT).fill(401), 429];

describe('the gateway in front of auth: client addresses (TRUSTED_PROXIES) and revoked tokens', () => {
  const databaseUrl = `${TEST_POSTGRES_URL}/dc_client_address_${process.pid}_${Date.now()}`;
  const processes: ServiceProcess[] = [];
  let dataDir: string;
  let trustingAuth: ServiceProcess;
  let untrustingAuth: ServiceProcess;
  let gateway: ServiceProcess;

  before(async () => {
    await deleteQueues(SERVICE_QUEUES);
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'defect-control-client-address-'));
    const common = { DATABASE_URL: databaseUrl, AMQP_URL: TEST_AMQP_URL, DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    const authEnv = {
      ...common,
      ADMIN_USER: 'admin:admin-secret',
      SIGN_IN_MAX_FAILURES_PER_ADDRESS: String(LIMIT),
      SIGN_IN_FAILURE_WINDOW: '10m',
    };
    const [authPort, untrustingPort, gatewayPort] = await Promise.all([freePort(), freePort(), freePort()]);
    // The first creates the schema and the signing key; the second finds both.
    trustingAuth = await startProcess(
      'src/services/auth/main.ts',
      { ...authEnv, TRUSTED_PROXIES: '127.0.0.1' },
      authPort,
    );
    processes.push(trustingAuth);
    untrustingAuth = await startProcess('src/services/auth/main.ts', authEnv, untrustingPort);
    processes.push(untrustingAuth);
    // Only auth is called here: the other routes point at it too.
    gateway = await startProcess(
      'src/services/gateway/main.ts',
      {
        LOG_LEVEL: 'warn',
        AMQP_URL: TEST_AMQP_URL,
        AUTH_URL: trustingAuth.url,
        PROJECTS_URL: trustingAuth.url,
        DEFECTS_URL: trustingAuth.url,
        EVENTS_URL: trustingAuth.url,
      },
      gatewayPort,
    );
    processes.push(gateway);
  });
  after(async () => {
    await Promise.all(processes.map((child) => child.stop()));
    await dropDatabase(databaseUrl);
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  /** A request whose TCP connection comes from `from` (a loopback address). */
  const send = (
    from: string,
    url: string,
    options: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> },
  ) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      // node:http rather than fetch: undici's connector does not pass localAddress on.
      const outgoing = http.request(url, {
        method: options.method ?? 'GET',
        headers: options.headers,
        localAddress: from,
      });
      outgoing.on('error', reject);
      outgoing.on('response', (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(text) }));
        response.on('error', reject);
      });
      outgoing.end(options.body);
    });

  // First: the address tests below use up 127.0.0.1's sign-ins, which this one needs.
  it("when an admin is demoted, then the gateway's dead-letter API refuses their old token within 2 s", async () => {
    const api = createApiClient(gateway.url);
    const admin = await api.login('admin', 'admin-secret');
    const demoted = await api.createUser('admin');
    assert.equal((await api.get('/v1/admin/dead-letters', demoted.token)).status, 200);
    const changedAt = Date.now();
    assert.equal((await api.patch(`/v1/users/${demoted.id}`, { role: 'engineer' }, admin)).status, 200);
    await eventually(
      async () => (await api.get('/v1/admin/dead-letters', demoted.token)).status === 401,
      2_000 - (Date.now() - changedAt),
      "the gateway to refuse the demoted admin's old token",
    );
    const refused = await api.get('/v1/admin/dead-letters', demoted.token);
    assert.equal(typeof refused.body.detail, 'string');
    const renewed = await api.login(demoted.username, 'password-123');
    assert.equal((await api.get('/v1/admin/dead-letters', renewed)).status, 403, 'an engineer now');
    assert.equal((await api.get('/v1/admin/dead-letters', admin)).status, 200, 'other admins are not affected');
  });

  let attempts = 0;
  /** A failed sign-in of a username never used before: only the address's count can refuse it. */
  const failedSignIn = async (from: string, baseUrl: string, forwardedFor?: string) => {
    const response = await send(from, `${baseUrl}/v1/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        username: `nobody-${process.pid}-${++attempts}`,
        password: 'wrong-password',
      }).toString(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}),
      },
    });
    if (response.status === 429) assert.equal(typeof response.body.detail, 'string');
    return response.status;
  };
  const failedSignIns = async (count: number, signIn: (attempt: number) => Promise<number>) => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < count; attempt++) statuses.push(await signIn(attempt));
    return statuses;
  };

  // The client connects from 127.0.0.1, an address auth trusts (as a client inside a trusted
  // range would): were its header appended to rather than replaced, auth would read past both
  // trusted entries to the forged one, and each guess would count for a new address.
  it('when a client sends a new X-Forwarded-For with each guess through the gateway, then its own address is still refused after the limit', async () => {
    const statuses = await failedSignIns(LIMIT + 1, (attempt) =>
      failedSignIn('127.0.0.1', gateway.url, `198.51.100.${attempt + 1}`),
    );
    assert.deepEqual(statuses, REFUSED_FROM_THE_4TH);
  });

  it('when one client reaches the limit through the gateway, then a client at another address still signs in', async () => {
    const first = await failedSignIns(LIMIT + 1, () => failedSignIn('127.0.0.3', gateway.url));
    assert.deepEqual(first, REFUSED_FROM_THE_4TH);
    // Were the gateway's own address counted, this one would be refused too.
    assert.equal(await failedSignIn('127.0.0.4', gateway.url), 401);
  });

  it('when a trusted proxy names the client in X-Forwarded-For, then the service counts that address', async () => {
    const named = await failedSignIns(LIMIT + 1, () => failedSignIn('127.0.0.1', trustingAuth.url, '203.0.113.1'));
    assert.deepEqual(named, REFUSED_FROM_THE_4TH);
    assert.equal(await failedSignIn('127.0.0.1', trustingAuth.url, '203.0.113.2'), 401, 'another client');
  });

  it('when a peer not in TRUSTED_PROXIES sends X-Forwarded-For, then the service ignores it', async () => {
    const statuses = await failedSignIns(LIMIT + 1, (attempt) =>
      failedSignIn('127.0.0.5', trustingAuth.url, `203.0.113.${10 + attempt}`),
    );
    assert.deepEqual(statuses, REFUSED_FROM_THE_4TH);
  });

  it('when TRUSTED_PROXIES is unset, then the service ignores X-Forwarded-For', async () => {
    const statuses = await failedSignIns(LIMIT + 1, (attempt) =>
      failedSignIn('127.0.0.6', untrustingAuth.url, `203.0.113.${20 + attempt}`),
    );
    assert.deepEqual(statuses, REFUSED_FROM_THE_4TH);
  });

  it('when a trusted proxy forwards an outside address, then /readyz still shows details by the socket (loopback)', async () => {
    const response = await send('127.0.0.1', `${trustingAuth.url}/readyz`, {
      headers: { 'x-forwarded-for': '203.0.113.99' },
    });
    assert.ok(
      response.body.checks.every((check: { detail?: unknown }) => check.detail !== undefined),
      JSON.stringify(response.body),
    );
  });
});
