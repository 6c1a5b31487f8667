import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { topicMatches } from '../../../src/platform/events/transport.ts';

/** [pattern, routing key, matches?] — AMQP topic exchange semantics. */
const CASES: Array<[pattern: string, routingKey: string, expected: boolean]> = [
  // exact words
  ['defect.created', 'defect.created', true],
  ['defect.created', 'defect.updated', false],
  ['defect.created', 'defect.created.extra', false],
  ['defect.created', 'defect', false],
  ['defect.created', 'project.created', false],
  ['defect', 'defect', true],
  ['defect', 'defects', false],
  ['defect.created', 'Defect.created', false],

  // * is exactly one word
  ['defect.*', 'defect.created', true],
  ['defect.*', 'defect.status_changed', true],
  ['defect.*', 'defect', false],
  ['defect.*', 'defect.a.b', false],
  ['defect.*', 'project.created', false],
  ['*.created', 'defect.created', true],
  ['*.created', 'project.created', true],
  ['*.created', 'created', false],
  ['*.created', 'a.b.created', false],
  ['*.*', 'defect.created', true],
  ['*.*', 'defect', false],
  ['*.*', 'a.b.c', false],
  ['*', 'defect', true],
  ['*', 'defect.created', false],
  ['a.*.c', 'a.b.c', true],
  ['a.*.c', 'a.c', false],
  ['a.*.c', 'a.b.b.c', false],

  // # is zero or more words
  ['#', 'defect.created', true],
  ['#', 'defect', true],
  ['#', 'a.b.c.d.e', true],
  ['#', '', true],
  ['defect.#', 'defect', true],
  ['defect.#', 'defect.created', true],
  ['defect.#', 'defect.a.b', true],
  ['defect.#', 'project.created', false],
  ['defect.#', 'defects.created', false],
  ['#.updated', 'updated', true],
  ['#.updated', 'defect.updated', true],
  ['#.updated', 'a.b.updated', true],
  ['#.updated', 'defect.updated.now', false],
  ['#.updated', 'defect.created', false],
  ['a.#.b', 'a.b', true],
  ['a.#.b', 'a.x.b', true],
  ['a.#.b', 'a.x.y.z.b', true],
  ['a.#.b', 'a.b.c', false],
  ['a.#.b', 'x.a.b', false],
  ['a.#.b', 'a', false],
  ['a.#.b', 'b', false],
  ['a.#.b.#', 'a.b', true],
  ['a.#.b.#', 'a.x.b.y.z', true],
  ['#.b.#', 'b', true],
  ['#.b.#', 'a.b.c', true],
  ['#.b.#', 'a.c', false],
  ['#.#', 'anything.at.all', true],
  ['#.#', 'one', true],

  // * and # together
  ['*.#', 'defect', true],
  ['*.#', 'defect.created', true],
  ['#.*', 'defect', true],
  ['*.*.#', 'defect', false],
  ['*.*.#', 'defect.created', true],
  ['*.*.#', 'defect.created.x.y', true],
  ['a.#.*', 'a', false],
  ['a.#.*', 'a.b', true],
  ['a.#.*', 'a.b.c', true],
  ['#.*.c', 'c', false],
  ['#.*.c', 'b.c', true],
  ['#.*.c', 'a.b.c', true],

  // literal words containing regex-ish characters are matched literally
  ['a+b.c', 'a+b.c', true],
  ['a+b.c', 'aab.c', false],
  ['x.y', 'x-y', false],
];

describe('topicMatches', () => {
  for (const [pattern, routingKey, expected] of CASES) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(routingKey)}`, () => {
      assert.equal(topicMatches(pattern, routingKey), expected);
    });
  }

  it('matches every event type the system publishes with "#"', () => {
    for (const key of ['user.registered', 'user.role_changed', 'project.created', 'defect.status_changed']) {
      assert.equal(topicMatches('#', key), true, key);
    }
  });
});
