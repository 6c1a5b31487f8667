import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApiClient, type ApiClient } from '../support/api-client.ts';
import { deleteQueues } from '../support/broker.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL, TEST_POSTGRES_URL } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { scrapeMetrics } from '../support/metrics.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { dropDatabase, eventually } from '../support/test-system.ts';

// Two auth replicas and two projects replicas, each its own process, sharing one
// PostgreSQL and one RabbitMQ: the failure counts hold across the auth replicas, and a
// revocation reaches both projects replicas (one through its consumer, the other through
// the table that consumer wrote) within 2 seconds.
describe('sign-in limits and token revocation across processes', () => {
  const databaseUrl = `${TEST_POSTGRES_URL}/dc_auth_split_${process.pid}_${Date.now()}`;
  const processes: ServiceProcess[] = [];
  let dataDir: string;
  let auths: ApiClient[];
  let authUrls: string[];
  let projects: ApiClient[];

  before(async () => {
    await deleteQueues(SERVICE_QUEUES);
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'defect-control-auth-split-'));
    const common = { DATABASE_URL: databaseUrl, AMQP_URL: TEST_AMQP_URL, DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    const ports = await Promise.all(Array.from({ length: 4 }, () => freePort()));
    const authEnv = { ...common, ADMIN_USER: 'admin:admin-secret', SIGN_IN_FAILURE_WINDOW: '1m' };
    // The first replica creates the schema and the signing key; the second finds both.
    const firstAuth = await startProcess('src/services/auth/main.ts', authEnv, ports[0]);
    processes.push(firstAuth);
    const secondAuth = await startProcess('src/services/auth/main.ts', authEnv, ports[1]);
    processes.push(secondAuth);
    const projectsEnv = { ...common, AUTH_URL: firstAuth.url };
    const projectReplicas = await Promise.all([
      startProcess('src/services/projects/main.ts', projectsEnv, ports[2]),
      startProcess('src/services/projects/main.ts', projectsEnv, ports[3]),
    ]);
    processes.push(...projectReplicas);
    authUrls = [firstAuth.url, secondAuth.url];
    auths = authUrls.map((url) => createApiClient(url));
    projects = projectReplicas.map((replica) => createApiClient(replica.url));
  });
  after(async () => {
    await Promise.all(processes.map((child) => child.stop()));
    await dropDatabase(databaseUrl);
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  const hashings = async () => {
    const scrapes = await Promise.all(authUrls.map((url) => scrapeMetrics(url)));
    return scrapes.reduce(
      (sum, scrape) => sum + scrape.value('auth_password_hashes_total', { operation: 'verify' }),
      0,
    );
  };

  it('when wrong passwords alternate between two auth replicas, then the 6th is refused with 429 and only 5 were hashed', async () => {
    const victim = await auths[0].createUser('engineer');
    const before = await hashings();
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const api = auths[attempt % 2];
      const response = await api.request('POST', '/v1/auth/token', {
        form: { username: victim.username, password: `wrong-${attempt}` },
      });
      statuses.push(response.status);
      if (response.status === 429) {
        assert.equal(typeof response.body.detail, 'string');
        assert.ok(Number(response.headers.get('retry-after')) >= 1);
      }
    }
    assert.deepEqual(statuses, [...Array(5).fill(401), ...Array(15).fill(429)]);
    assert.equal((await hashings()) - before, 5);
  });

  /** Both projects replicas accept the token now, and refuse it within 2 s of `change`. */
  const assertEndsEverywhereWithin2s = async (token: string, change: () => Promise<void>) => {
    for (const replica of projects) assert.equal((await replica.get('/v1/projects', token)).status, 200);
    const changedAt = Date.now();
    await change();
    await Promise.all(
      projects.map((replica, index) =>
        eventually(
          async () => (await replica.get('/v1/projects', token)).status === 401,
          2_000 - (Date.now() - changedAt),
          `projects replica ${index + 1} to refuse the old token`,
        ),
      ),
    );
  };

  it('when an admin demotes a user, then their old token ends on every projects replica within 2 s, and a token issued right after works', async () => {
    const admin = await auths[0].login('admin', 'admin-secret');
    const user = await auths[0].createUser('manager');
    let renewed = '';
    await assertEndsEverywhereWithin2s(user.token, async () => {
      assert.equal((await auths[1].patch(`/v1/users/${user.id}`, { role: 'observer' }, admin)).status, 200);
      // Same second as the change: it carries the new generation and stays valid.
      renewed = await auths[0].login(user.username, 'password-123');
    });
    for (const replica of projects) assert.equal((await replica.get('/v1/projects', renewed)).status, 200);
    assert.equal((await projects[0].post('/v1/projects', { name: 'x' }, renewed)).status, 403, 'an observer now');
  });

  it('when an admin disables a user, then their old token ends on every projects replica within 2 s', async () => {
    const admin = await auths[0].login('admin', 'admin-secret');
    const user = await auths[0].createUser('engineer');
    await assertEndsEverywhereWithin2s(user.token, async () => {
      assert.equal((await auths[0].patch(`/v1/users/${user.id}`, { disabled: true }, admin)).status, 200);
    });
  });

  it('when a user changes their password, then their old token ends on every projects replica within 2 s', async () => {
    const user = await auths[0].createUser('engineer');
    await assertEndsEverywhereWithin2s(user.token, async () => {
      const changed = await auths[1].request('POST', '/v1/users/me/password', {
        token: user.token,
        json: { old_password: 'password-123', new_password: 'a-new-passphrase-42' },
      });
      assert.equal(changed.status, 204);
    });
    const fresh = await auths[0].login(user.username, 'a-new-passphrase-42');
    for (const replica of projects) assert.equal((await replica.get('/v1/projects', fresh)).status, 200);
  });
});
