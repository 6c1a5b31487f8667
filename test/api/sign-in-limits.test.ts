import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiClient, ApiResponse, TestUser } from '../support/api-client.ts';
import { scrapeMetrics } from '../support/metrics.ts';
import { eventually, MODES, startTestSystem, type TestSystem } from '../support/test-system.ts';

// Sign-in throttling, password rules and token revocation, in the all-in-one process on
// both modes (PostgreSQL + RabbitMQ, and embedded PGlite + in-process transport).

// Long enough that 100 attempts on a loaded machine end inside one window.
const WINDOW = '1m';

function assertProblem(response: ApiResponse, status: number, code: string) {
  assert.equal(response.status, status, `${response.status} ${JSON.stringify(response.body)}`);
  assert.match(response.headers.get('content-type') ?? '', /json/);
  assert.equal(response.body.code, code);
  assert.equal(typeof response.body.detail, 'string');
  assert.notEqual(response.body.detail.trim(), '');
}

for (const mode of MODES) {
  describe(`sign-in limits, password rules and revocation (${mode})`, () => {
    let system: TestSystem;
    let api: ApiClient;

    const signIn = (username: string, password: string) =>
      api.request('POST', '/v1/auth/token', { form: { username, password } });
    const hashings = async () => (await scrapeMetrics(system.url)).value('auth_password_hashes_total');

    before(async () => {
      system = await startTestSystem({
        mode,
        env: {
          SIGN_IN_FAILURE_WINDOW: WINDOW,
          SIGN_IN_MAX_FAILURES_PER_ADDRESS: '50',
          REGISTRATIONS_PER_ADDRESS: '100000',
        },
      });
      api = system.api;
    });
    after(() => system?.close());

    it('when 100 wrong passwords are tried for one user, then 429 from the 6th with no more than 5 hashings', async () => {
      const victim = await api.createUser('engineer');
      const before = await hashings();
      const statuses: number[] = [];
      let firstRefusal: ApiResponse | undefined;
      for (let attempt = 0; attempt < 100; attempt++) {
        const response = await signIn(victim.username, `wrong-guess-${attempt}`);
        statuses.push(response.status);
        if (response.status === 429) firstRefusal ??= response;
      }
      assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
      assert.ok(
        statuses.slice(5).every((status) => status === 429),
        `from the 6th: ${statuses.slice(5).join(',')}`,
      );
      assert.equal((await hashings()) - before, 5, 'one argon2 verify per allowed attempt, none for refused ones');
      assertProblem(firstRefusal!, 429, 'AUTH_TOO_MANY_ATTEMPTS');
      const retryAfter = Number(firstRefusal!.headers.get('retry-after'));
      assert.equal(firstRefusal!.body.retry_after, retryAfter);

      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      // Even the right password is refused while the window lasts (it reopens in the test below).
      assertProblem(await signIn(victim.username, 'password-123'), 429, 'AUTH_TOO_MANY_ATTEMPTS');
    });

    it('when a sign-in succeeds, then the failures before it no longer count', async () => {
      const user = await api.createUser('engineer');
      for (let round = 0; round < 3; round++) {
        for (let attempt = 0; attempt < 4; attempt++) {
          assert.equal((await signIn(user.username, 'not-my-password')).status, 401);
        }
        assert.equal((await signIn(user.username, 'password-123')).status, 200);
      }
    });

    it('when a username differs in case, then it finds the user; a name the database alone would fold to it (admİn) does not', async () => {
      assert.equal((await signIn('ADMIN', 'admin-secret')).status, 200);
      // PostgreSQL with a glibc or C.UTF-8 collation lowers the dotted capital I to i, JavaScript
      // does not: the throttle's key and the lookup must agree, or each such spelling would
      // count its failures apart while reaching the same user.
      assert.equal((await signIn('admİn', 'admin-secret')).status, 401);
    });

    it('when a disabled user signs in with the right password, then 401 with the wrong password message; enabled again, they sign in', async () => {
      const admin = await adminOf(api);
      const user = await api.createUser('engineer');
      const wrong = await signIn(user.username, 'not-my-password');
      const disabled = await api.patch(`/v1/users/${user.id}`, { disabled: true }, admin.token);
      assert.equal(disabled.status, 200);
      assert.equal(disabled.body.disabled, true);
      const refused = await signIn(user.username, 'password-123');
      assertProblem(refused, 401, 'AUTH_INVALID_CREDENTIALS');
      assert.equal(refused.body.detail, wrong.body.detail);
      assert.equal((await api.patch(`/v1/users/${user.id}`, { disabled: false }, admin.token)).body.disabled, false);
      assert.equal((await signIn(user.username, 'password-123')).status, 200);
    });

    it('when an admin demotes or disables a user, or the user changes their password, then the old token ends and a new one works', async () => {
      const admin = await adminOf(api);
      const demoted = await api.createUser('manager');
      assert.equal((await api.patch(`/v1/users/${demoted.id}`, { role: 'observer' }, admin.token)).status, 200);
      const renewed = await api.login(demoted.username, 'password-123');
      await assertTokenEnds(api, demoted.token);
      assert.equal((await api.get('/v1/projects', renewed)).status, 200, 'a token issued after the change works');

      const disabled = await api.createUser('engineer');
      assert.equal((await api.patch(`/v1/users/${disabled.id}`, { disabled: true }, admin.token)).status, 200);
      await assertTokenEnds(api, disabled.token);

      const changer = await api.createUser('engineer');
      const changed = await api.request('POST', '/v1/users/me/password', {
        token: changer.token,
        json: { old_password: 'password-123', new_password: 'a-new-passphrase-42' },
      });
      assert.equal(changed.status, 204, JSON.stringify(changed.body));
      await assertTokenEnds(api, changer.token);
      assert.equal((await signIn(changer.username, 'password-123')).status, 401);
      const fresh = await api.login(changer.username, 'a-new-passphrase-42');
      assert.equal((await api.get('/v1/users/me', fresh)).status, 200);
    });

    it('when an admin tries to disable themselves, then 409 and nothing changes', async () => {
      const admin = await adminOf(api);
      assertProblem(
        await api.patch(`/v1/users/${admin.id}`, { disabled: true }, admin.token),
        409,
        'AUTH_CANNOT_DISABLE_SELF',
      );
      assert.equal((await api.get('/v1/users/me', admin.token)).status, 200);
    });

    it('when a password is short or common, then 422 naming the field, on registration and on change', async () => {
      const register = (password: string) =>
        api.post('/v1/auth/register', { username: `weak${Date.now()}`, password, email: 'weak@example.com' });
      const short = await register('abc1234');
      assert.equal(short.status, 422);
      assert.match(short.body.detail, /password/);
      for (const common of ['password', 'Password1', '12345678', 'baseball']) {
        const response = await register(common);
        assertProblem(response, 422, 'AUTH_WEAK_PASSWORD');
        assert.deepEqual(
          response.body.errors.map((error: { loc: string }) => error.loc),
          ['body.password'],
        );
      }
      const user = await api.createUser('engineer');
      const change = await api.request('POST', '/v1/users/me/password', {
        token: user.token,
        json: { old_password: 'password-123', new_password: 'qwertyuiop' },
      });
      assertProblem(change, 422, 'AUTH_WEAK_PASSWORD');
      assert.equal(change.body.errors[0].loc, 'body.new_password');
      const wrongOld = await api.request('POST', '/v1/users/me/password', {
        token: user.token,
        json: { old_password: 'not-the-password', new_password: 'a-fine-passphrase-7' },
      });
      assertProblem(wrongOld, 422, 'AUTH_WRONG_PASSWORD');
      assert.equal(wrongOld.body.errors[0].loc, 'body.old_password');
      assert.equal((await api.get('/v1/users/me', user.token)).status, 200, 'a refused change ends no token');
    });
  });
}

describe('the failure window (embedded, 1 s)', () => {
  let system: TestSystem;

  before(async () => {
    system = await startTestSystem({ mode: 'embedded', env: { SIGN_IN_FAILURE_WINDOW: '1s' } });
  });
  after(() => system?.close());

  it('when a username was refused, then the right password works again once the window has ended', async () => {
    const user = await system.api.createUser('engineer');
    const signIn = (password: string) =>
      system.api.request('POST', '/v1/auth/token', { form: { username: user.username, password } });
    // Eight at once: each counts as a failure when it arrives, before any hashing, so the
    // burst fills the window however slowly the machine hashes (one by one, a loaded machine
    // could let a 1 s window close before the 6th).
    let refused: ApiResponse | undefined;
    for (let burst = 0; burst < 5 && !refused; burst++) {
      const responses = await Promise.all(Array.from({ length: 8 }, () => signIn('not-my-password')));
      refused = responses.find((response) => response.status === 429);
    }
    assert.ok(refused, 'a 429 within 5 bursts of 8');
    assert.equal(refused.headers.get('retry-after'), '1');
    await eventually(async () => (await signIn('password-123')).status === 200, 10_000, 'the window to end');
  });
});

describe('address limits (embedded)', () => {
  let system: TestSystem;

  before(async () => {
    system = await startTestSystem({
      mode: 'embedded',
      env: {
        SIGN_IN_MAX_FAILURES_PER_ADDRESS: '3',
        SIGN_IN_MAX_FAILURES_PER_USERNAME: '100',
        REGISTRATIONS_PER_ADDRESS: '2',
      },
    });
  });
  after(() => system?.close());

  it('when failures from one address exceed its limit, then 429 whatever the username', async () => {
    const statuses = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const response = await system.api.request('POST', '/v1/auth/token', {
        form: { username: `someone-${attempt}`, password: 'a-guess' },
      });
      statuses.push(response.status);
      if (response.status === 429) assertProblem(response, 429, 'AUTH_TOO_MANY_ATTEMPTS');
    }
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
  });

  it('when registrations from one address exceed its limit, then 429 with Retry-After', async () => {
    const register = (n: number) =>
      system.api.post('/v1/auth/register', {
        username: `newcomer${n}`,
        password: 'a-good-passphrase',
        email: `newcomer${n}@example.com`,
      });
    assert.equal((await register(1)).status, 201);
    assert.equal((await register(2)).status, 201);
    const refused = await register(3);
    assertProblem(refused, 429, 'AUTH_TOO_MANY_REGISTRATIONS');
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
  });
});

async function adminOf(api: ApiClient): Promise<TestUser> {
  const token = await api.login('admin', 'admin-secret');
  const me = await api.get('/v1/users/me', token);
  return { id: me.body.id, username: 'admin', role: 'admin', token };
}

/** The token is refused (401) within 2 s of the change, wherever the check lands. */
async function assertTokenEnds(api: ApiClient, token: string) {
  await eventually(async () => (await api.get('/v1/projects', token)).status === 401, 2_000, 'the old token to end');
  assertProblem(await api.get('/v1/users/me', token), 401, 'UNAUTHENTICATED');
}
