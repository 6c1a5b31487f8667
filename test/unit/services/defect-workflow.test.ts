import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DomainError } from '../../../src/platform/errors/domain-error.ts';
import {
  assertInitialStatus,
  assertTransitionAllowed,
  INITIAL_STATUS,
  STATUSES,
  TRANSITIONS,
  type DefectStatus,
} from '../../../src/services/defects/defect-workflow.ts';

/** The workflow as specified, independent of the module's own table. */
const ALLOWED: Record<DefectStatus, DefectStatus[]> = {
  Новая: ['В работе', 'Отменена'],
  'В работе': ['Решена', 'Отменена'],
  Решена: ['Закрыта', 'В работе'],
  Закрыта: ['В работе'],
  Отменена: ['Новая'],
};

const distinctPairs = STATUSES.flatMap((from) =>
  STATUSES.filter((to) => to !== from).map((to) => [from, to] as [DefectStatus, DefectStatus]),
);
const allowedPairs = distinctPairs.filter(([from, to]) => ALLOWED[from].includes(to));
const forbiddenPairs = distinctPairs.filter(([from, to]) => !ALLOWED[from].includes(to));

describe('defect workflow table', () => {
  it('has the five statuses', () => {
    assert.deepEqual([...STATUSES].sort(), ['В работе', 'Закрыта', 'Новая', 'Отменена', 'Решена'].sort());
  });

  it('matches the specified transitions', () => {
    assert.deepEqual(
      Object.fromEntries(Object.entries(TRANSITIONS).map(([from, next]) => [from, [...next].sort()])),
      Object.fromEntries(Object.entries(ALLOWED).map(([from, next]) => [from, [...next].sort()])),
    );
  });

  it('covers all 20 ordered pairs of distinct statuses: 8 allowed, 12 forbidden', () => {
    assert.equal(distinctPairs.length, 20);
    assert.equal(allowedPairs.length, 8);
    assert.equal(forbiddenPairs.length, 12);
  });
});

describe('assertTransitionAllowed', () => {
  for (const [from, to] of allowedPairs) {
    it(`allows «${from}» → «${to}»`, () => {
      assert.doesNotThrow(() => assertTransitionAllowed(from, to));
    });
  }

  for (const [from, to] of forbiddenPairs) {
    it(`forbids «${from}» → «${to}» with DEFECT_BAD_TRANSITION`, () => {
      assert.throws(
        () => assertTransitionAllowed(from, to),
        (error: unknown) => {
          assert.ok(error instanceof DomainError, String(error));
          assert.equal(error.code, 'DEFECT_BAD_TRANSITION');
          assert.ok(error.message.includes(`«${from}»`), error.message);
          assert.ok(error.message.includes(`«${to}»`), error.message);
          const allowedPart = error.message.slice(error.message.indexOf('allowed next'));
          for (const next of ALLOWED[from]) {
            assert.ok(allowedPart.includes(`«${next}»`), `"${error.message}" does not name «${next}» as allowed next`);
          }
          assert.deepEqual([...(error.extra.allowed_next as DefectStatus[])].sort(), [...ALLOWED[from]].sort());
          assert.equal(error.extra.current_status, from);
          assert.equal(error.extra.requested_status, to);
          return true;
        },
      );
    });
  }

  for (const status of STATUSES) {
    it(`lets «${status}» stay «${status}»`, () => {
      assert.doesNotThrow(() => assertTransitionAllowed(status, status));
    });
  }
});

describe('assertInitialStatus', () => {
  it('accepts «Новая»', () => {
    assert.equal(INITIAL_STATUS, 'Новая');
    assert.doesNotThrow(() => assertInitialStatus('Новая'));
  });

  for (const status of STATUSES.filter((s) => s !== 'Новая')) {
    it(`rejects «${status}» with DEFECT_BAD_INITIAL_STATUS`, () => {
      assert.throws(
        () => assertInitialStatus(status),
        (error: unknown) => {
          assert.ok(error instanceof DomainError, String(error));
          assert.equal(error.code, 'DEFECT_BAD_INITIAL_STATUS');
          assert.ok(error.message.includes('«Новая»'), error.message);
          assert.ok(error.message.includes(`«${status}»`), error.message);
          return true;
        },
      );
    });
  }
});
