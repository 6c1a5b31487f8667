import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { DomainError } from '../../../src/platform/errors/domain-error.ts';
import { bearerMatches, isLoopback, operatorAccess } from '../../../src/platform/http/operator-access.ts';
import { sharedReading } from '../../../src/platform/metrics/shared-reading.ts';

const TOKEN = 'metrics-token-0123456789';

/** What the decision reads of a request: the socket's peer and the Authorization header. */
const requestFrom = (remoteAddress: string, authorization?: string) =>
  ({ socket: { remoteAddress }, headers: authorization ? { authorization } : {} }) as unknown as FastifyRequest;

describe('operator access: who sees /metrics and /readyz details', () => {
  it('loopback is 127.0.0.0/8 and ::1, also IPv4-mapped; nothing else', () => {
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'])
      assert.ok(isLoopback(address), address);
    for (const address of ['192.0.2.2', '10.0.0.1', '::ffff:192.0.2.2', 'fe80::1', '::', '', undefined, '128.0.0.1'])
      assert.ok(!isLoopback(address), String(address));
  });

  it('the bearer token must match exactly, whatever its length', () => {
    assert.ok(bearerMatches(`Bearer ${TOKEN}`, TOKEN));
    assert.ok(bearerMatches(`bearer ${TOKEN}`, TOKEN), 'the scheme is case-insensitive');
    for (const header of [
      undefined,
      '',
      'Bearer',
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      TOKEN,
      `Basic ${TOKEN}`,
    ])
      assert.ok(!bearerMatches(header, TOKEN), String(header));
  });

  it('without a token /metrics is open; with one a request without it or with a wrong one is refused with 401', () => {
    operatorAccess(undefined).requireForMetrics(requestFrom('192.0.2.2'));
    const closed = operatorAccess(TOKEN);
    closed.requireForMetrics(requestFrom('192.0.2.2', `Bearer ${TOKEN}`));
    for (const request of [requestFrom('127.0.0.1'), requestFrom('192.0.2.2', 'Bearer wrong-token-0123456789')]) {
      assert.throws(
        () => closed.requireForMetrics(request),
        (error: unknown) =>
          error instanceof DomainError && error.statusCode === 401 && /METRICS_TOKEN/.test(error.message),
      );
    }
  });

  it('readiness details: loopback always; another address only with the configured token', () => {
    const open = operatorAccess(undefined);
    assert.ok(open.maySeeDetails(requestFrom('127.0.0.1')));
    assert.ok(!open.maySeeDetails(requestFrom('192.0.2.2')));
    assert.ok(!open.maySeeDetails(requestFrom('192.0.2.2', 'Bearer anything-at-all-here')), 'no token configured');
    const closed = operatorAccess(TOKEN);
    assert.ok(closed.maySeeDetails(requestFrom('::1')));
    assert.ok(closed.maySeeDetails(requestFrom('192.0.2.2', `Bearer ${TOKEN}`)));
    assert.ok(!closed.maySeeDetails(requestFrom('192.0.2.2', 'Bearer wrong-token-0123456789')));
  });
});

describe('a shared reading of stored state', () => {
  /** A read the test finishes by hand, counting how often it was started. */
  const controlledRead = () => {
    const pending: Array<(value: number) => void> = [];
    return {
      reads: () => pending.length,
      read: () => new Promise<number>((resolve) => pending.push(resolve)),
      finish: (index: number, value: number) => pending[index](value),
    };
  };

  it('many callers at once share one read; within maxAge they get its value without another', async () => {
    const source = controlledRead();
    let clock = 0;
    const get = sharedReading({
      read: source.read,
      maxAgeMs: 1000,
      waitMs: 60_000,
      unknown: () => -1,
      now: () => clock,
    });
    const callers = Array.from({ length: 50 }, () => get());
    assert.equal(source.reads(), 1);
    source.finish(0, 7);
    assert.deepEqual(new Set(await Promise.all(callers)), new Set([7]));
    clock = 999;
    assert.equal(await get(), 7);
    assert.equal(source.reads(), 1, 'still fresh');
    clock = 1000;
    const next = get();
    assert.equal(source.reads(), 2, 'stale: read again');
    source.finish(1, 8);
    assert.equal(await next, 8);
  });

  it('a read that hangs answers "unknown" after waitMs, and later callers join it rather than start another', async () => {
    const source = controlledRead();
    const get = sharedReading({ read: source.read, maxAgeMs: 1000, waitMs: 20, unknown: () => -1 });
    assert.deepEqual(await Promise.all([get(), get()]), [-1, -1]);
    assert.equal(await get(), -1);
    assert.equal(source.reads(), 1, 'one read in flight, however many callers gave up on it');
    source.finish(0, 5);
    assert.equal(await get(), 5);
    assert.equal(source.reads(), 1);
  });

  it('a failed read is not kept: the next caller reads again', async () => {
    let reads = 0;
    const get = sharedReading({
      read: () => {
        reads += 1;
        return reads === 1 ? Promise.reject(new Error('database down')) : Promise.resolve(3);
      },
      maxAgeMs: 60_000,
      waitMs: 1000,
      unknown: () => -1,
    });
    assert.equal(await get(), -1);
    assert.equal(await get(), 3);
    assert.equal(reads, 2);
  });
});
