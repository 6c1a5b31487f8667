import { withTimeout } from '../timeout.ts';

/**
 * A reading of something costly (database counts, broker queue depths) shared by everyone who
 * asks within `maxAgeMs` of its completion, with at most one read in flight: however many
 * scrapes arrive together, the database sees one query at a time, at most once per interval.
 *
 * Callers wait at most `waitMs` for a read in flight and get `unknown` meanwhile; the read
 * itself is not abandoned (a query cannot be taken back), so a hung database keeps exactly
 * one read, never one per scrape.
 */
export function sharedReading<T>(options: {
  read: () => Promise<T>;
  maxAgeMs: number;
  waitMs: number;
  unknown: () => T;
  /** Called when a read starts (counted as a metric, so the sharing can be seen from outside). */
  onRead?: () => void;
  now?: () => number;
}): () => Promise<T> {
  const now = options.now ?? Date.now;
  let last: { value: T; at: number } | undefined;
  let inFlight: Promise<T> | undefined;

  const startRead = () => {
    options.onRead?.();
    inFlight = options
      .read()
      .then((value) => {
        last = { value, at: now() };
        return value;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  return async () => {
    if (last && now() - last.at < options.maxAgeMs) return last.value;
    const reading = inFlight ?? startRead();
    return withTimeout(reading, options.waitMs, 'reading').catch(() => options.unknown());
  };
}
