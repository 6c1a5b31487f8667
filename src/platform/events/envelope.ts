import { randomUUID } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';

/**
 * The event envelope of the seed, kept exactly:
 * {"event_id", "event_type", "data", "user_id", "timestamp"}.
 */
export const EventEnvelopeSchema = Type.Object({
  event_id: Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' }),
  event_type: Type.String({ pattern: '^[a-z_]+\\.[a-z_]+$' }),
  data: Type.Record(Type.String(), Type.Unknown()),
  user_id: Type.Union([Type.Integer(), Type.Null()]),
  timestamp: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}$' }),
});

export type EventEnvelope<Data extends Record<string, unknown> = Record<string, unknown>> = Omit<
  Static<typeof EventEnvelopeSchema>,
  'data'
> & { data: Data };

const envelopeChecker = TypeCompiler.Compile(EventEnvelopeSchema);

export function createEvent<Data extends Record<string, unknown>>(
  eventType: string,
  data: Data,
  userId: number | null,
  now: Date = new Date(),
): EventEnvelope<Data> {
  return {
    event_id: randomUUID(),
    event_type: eventType,
    data,
    user_id: userId,
    timestamp: formatEventTimestamp(now, microsecondsNow()),
  };
}

/** UTC `YYYY-MM-DDTHH:MM:SS.ffffff`, no offset: Python's datetime.utcnow().isoformat(). */
export function formatEventTimestamp(date: Date, microsecondsWithinMillisecond = 0): string {
  const iso = date.toISOString(); // 2025-12-01T14:30:00.123Z
  return `${iso.slice(0, 23)}${String(microsecondsWithinMillisecond).padStart(3, '0')}`;
}

/** Parses the envelope's timestamp back to a Date (UTC). */
export function parseEventTimestamp(timestamp: string): Date {
  return new Date(`${timestamp.slice(0, 23)}Z`);
}

/**
 * The body as an envelope, or the reason it is not one. A body the transport already
 * decoded (JSON content type) is checked as it is, not serialised and parsed again.
 */
export function parseEnvelope(body: unknown): { event: EventEnvelope } | { error: string } {
  let value: unknown = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    try {
      value = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
    } catch (error) {
      return { error: `body is not valid JSON: ${(error as Error).message}` };
    }
  }
  if (!envelopeChecker.Check(value)) {
    const first = envelopeChecker.Errors(value).First();
    return { error: `not a valid event envelope: ${first ? `${first.path || '/'} ${first.message}` : 'unknown'}` };
  }
  return { event: value };
}

function microsecondsNow(): number {
  // performance.now() has sub-millisecond resolution: its fraction gives the microseconds.
  return Math.floor(((performance.timeOrigin + performance.now()) % 1) * 1000);
}
