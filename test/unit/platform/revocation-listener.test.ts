import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { applyRevocation } from '../../../src/platform/auth/revocation-listener.ts';
import { createTokenRevocations } from '../../../src/platform/auth/token-revocations.ts';
import { captureLogs } from '../../support/log-capture.ts';

const envelope = (eventType: string, data: Record<string, unknown>) => ({
  event_id: randomUUID(),
  event_type: eventType,
  data,
  user_id: 1,
  timestamp: '2026-12-02T14:00:00.000000',
});

// The gateway's revocations come from its own queue, with no inbox and no dead letters:
// what the handler makes of each message is all there is.
describe("the gateway's revocation messages", () => {
  for (const eventType of ['user.role_changed', 'user.disabled', 'user.password_changed']) {
    it(`revokes on ${eventType}, as JSON text or already decoded`, () => {
      const revocations = createTokenRevocations();
      const data = {
        user_id: 7,
        token_generation: 4,
        old_role: 'admin',
        new_role: 'engineer',
        changed_by: 1,
        disabled_by: 1,
      };
      applyRevocation(JSON.stringify(envelope(eventType, data)), revocations, captureLogs().log);
      assert.equal(revocations.isRevoked({ id: 7, tokenGeneration: 3 }), true);
      assert.equal(revocations.isRevoked({ id: 7, tokenGeneration: 4 }), false);
      applyRevocation(envelope(eventType, { ...data, token_generation: 5 }), revocations, captureLogs().log);
      assert.equal(revocations.isRevoked({ id: 7, tokenGeneration: 4 }), true);
    });
  }

  const ignored: Array<[string, unknown]> = [
    ['not JSON', 'not json {'],
    ['not an envelope', { user_id: 7, token_generation: 4 }],
    ['another event type', envelope('user.registered', { user_id: 7, token_generation: 4 })],
    ['data against the contract', envelope('user.password_changed', { user_id: 7, token_generation: 'many' })],
  ];
  for (const [what, body] of ignored) {
    it(`ignores and logs a message that is ${what}, revoking nothing`, () => {
      const revocations = createTokenRevocations();
      const logs = captureLogs();
      applyRevocation(body, revocations, logs.log);
      assert.equal(revocations.isRevoked({ id: 7, tokenGeneration: 0 }), false);
      assert.deepEqual(logs.messages(), ['token revocation message ignored']);
    });
  }
});
