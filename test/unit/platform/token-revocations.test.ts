import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuthenticatedUser } from '../../../src/platform/auth/access-token.ts';
import { createTokenRevocations, rejectingRevoked } from '../../../src/platform/auth/token-revocations.ts';
import { loadConfig } from '../../../src/platform/config.ts';

const tokenOf = (id: number, tokenGeneration: number): AuthenticatedUser => ({
  id,
  username: `user${id}`,
  role: 'engineer',
  tokenGeneration,
});

describe('token revocations', () => {
  it('voids the tokens of a user below the generation, and only those', () => {
    const revocations = createTokenRevocations();
    revocations.revoke(7, 3);
    assert.equal(revocations.isRevoked(tokenOf(7, 2)), true);
    assert.equal(revocations.isRevoked(tokenOf(7, 3)), false, 'issued after the change: valid');
    assert.equal(revocations.isRevoked(tokenOf(8, 0)), false, 'another user');
  });

  it('never lowers a generation, and tells the listeners once per news', () => {
    const revocations = createTokenRevocations();
    const told: number[] = [];
    revocations.onRevoked((userId) => told.push(userId));
    assert.equal(revocations.revoke(7, 3), true);
    assert.equal(revocations.revoke(7, 2), false, 'an older event arriving late');
    assert.equal(revocations.revoke(7, 3), false, 'the same event again');
    assert.equal(revocations.isRevoked(tokenOf(7, 2)), true);
    assert.deepEqual(told, [7]);
  });

  it('rejects a revoked token even when the verifier had it cached', async () => {
    const revocations = createTokenRevocations();
    const verify = rejectingRevoked(async () => tokenOf(7, 1), revocations);
    assert.equal((await verify('t')).id, 7);
    revocations.revoke(7, 2);
    await assert.rejects(verify('t'), /revoked/);
  });
});

describe('sign-in limit settings', () => {
  it('default to 5 and 50 failures in 15 minutes and 10 registrations an hour', () => {
    const config = loadConfig({});
    assert.equal(config.SIGN_IN_MAX_FAILURES_PER_USERNAME, 5);
    assert.equal(config.SIGN_IN_MAX_FAILURES_PER_ADDRESS, 50);
    assert.equal(config.signInFailureWindowMs, 15 * 60_000);
    assert.equal(config.REGISTRATIONS_PER_ADDRESS, 10);
    assert.equal(config.registrationWindowMs, 3_600_000);
  });

  it('refuse a zero limit and a window of 0', () => {
    assert.throws(() => loadConfig({ SIGN_IN_MAX_FAILURES_PER_USERNAME: '0' }), /SIGN_IN_MAX_FAILURES_PER_USERNAME/);
    assert.throws(() => loadConfig({ SIGN_IN_FAILURE_WINDOW: '0s' }), /SIGN_IN_FAILURE_WINDOW/);
  });
});
