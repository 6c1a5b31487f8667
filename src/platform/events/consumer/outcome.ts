import type { Logger } from '../../logger.ts';
import type { ConsumeResult } from '../../metrics/metrics.ts';
import type { DeliveryOutcome } from '../transport.ts';
import { PermanentFailure } from './types.ts';

/** ±20 % so that messages failing together do not all come back at the same instant. */
export function withJitter(delayMs: number, random = Math.random): number {
  return Math.round(delayMs * (0.8 + 0.4 * random()));
}

/**
 * What becomes of a message whose handler failed on attempt `attempt`: parked at once for a
 * PermanentFailure, parked when no retry is left, else retried after its step's delay.
 */
export function failureOutcome(
  error: unknown,
  attempt: number,
  retryDelaysMs: number[],
  eventLog: Logger,
  count: (result: ConsumeResult) => void,
): DeliveryOutcome {
  const reason = (error as Error).message ?? String(error);
  if (error instanceof PermanentFailure) {
    eventLog.error({ err: error }, 'event cannot be handled; parked');
    count('dead_letter');
    return { kind: 'park', reason: 'permanent_failure', error: reason };
  }
  if (attempt > retryDelaysMs.length) {
    eventLog.error({ err: error, attempts: attempt }, 'event failed on every attempt; parked');
    count('dead_letter');
    return { kind: 'park', reason: 'retries_exhausted', error: reason };
  }
  const delayMs = withJitter(retryDelaysMs[attempt - 1]);
  eventLog.warn({ err: error, attempt, retryInMs: delayMs }, 'event handler failed; will retry');
  count('retry');
  return { kind: 'retry', delayMs, error: reason };
}
