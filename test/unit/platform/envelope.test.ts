import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createEvent,
  formatEventTimestamp,
  parseEnvelope,
  parseEventTimestamp,
  type EventEnvelope,
} from '../../../src/platform/events/envelope.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;

/** Runs `body` with process.env.TZ set to `tz`, then restores it. */
function withTimeZone<T>(tz: string, body: () => T): T {
  const previous = process.env.TZ;
  process.env.TZ = tz;
  try {
    return body();
  } finally {
    if (previous === undefined) delete process.env.TZ;
    else process.env.TZ = previous;
  }
}

describe('createEvent', () => {
  const now = new Date(Date.UTC(2025, 11, 1, 14, 30, 5, 123));

  it('gives a UUID v4 event_id and the given type, data and user_id', () => {
    const data = { defect_id: 1, title: 'Критическая ошибка' };
    const event = createEvent('defect.created', data, 7, now);
    assert.match(event.event_id, UUID_V4);
    assert.equal(event.event_type, 'defect.created');
    assert.deepEqual(event.data, { defect_id: 1, title: 'Критическая ошибка' });
    assert.equal(event.user_id, 7);
    assert.deepEqual(Object.keys(event).sort(), ['data', 'event_id', 'event_type', 'timestamp', 'user_id']);
  });

  it('keeps a null user_id', () => {
    assert.equal(createEvent('user.registered', { user_id: 3 }, null, now).user_id, null);
  });

  it('gives every event its own event_id', () => {
    const ids = new Set(Array.from({ length: 50 }, () => createEvent('a.b', {}, 1, now).event_id));
    assert.equal(ids.size, 50);
  });

  it('stamps the given Date in UTC with six fractional digits', () => {
    const event = createEvent('defect.created', {}, 1, now);
    assert.match(event.timestamp, TIMESTAMP);
    assert.equal(event.timestamp.slice(0, 23), '2025-12-01T14:30:05.123');
    assert.equal(parseEventTimestamp(event.timestamp).getTime(), now.getTime());
  });

  it('stamps UTC whatever the local time zone is', () => {
    for (const tz of ['Asia/Vladivostok', 'America/Los_Angeles', 'Europe/Moscow']) {
      const [event, offset] = withTimeZone(
        tz,
        () => [createEvent('defect.created', {}, 1, now), now.getTimezoneOffset()] as const,
      );
      assert.notEqual(offset, 0, `TZ=${tz} did not take effect`);
      assert.equal(event.timestamp.slice(0, 23), '2025-12-01T14:30:05.123', tz);
    }
  });

  it('defaults the timestamp to the current time', () => {
    const before = Date.now();
    const event = createEvent('defect.created', {}, 1);
    const after = Date.now();
    assert.match(event.timestamp, TIMESTAMP);
    const stamped = parseEventTimestamp(event.timestamp).getTime();
    assert.ok(stamped >= before && stamped <= after, `${event.timestamp} not within [${before}, ${after}]`);
  });

  it('produces an envelope that parseEnvelope accepts after a JSON round trip', () => {
    const event = createEvent('defect.status_changed', { defect_id: 2, new_status: 'В работе' }, 4, now);
    assert.deepEqual(parseEnvelope(JSON.stringify(event)), { event });
  });
});

describe('formatEventTimestamp', () => {
  it('formats a known Date as UTC YYYY-MM-DDTHH:MM:SS.ffffff', () => {
    assert.equal(formatEventTimestamp(new Date(Date.UTC(2025, 11, 1, 14, 30, 0, 123))), '2025-12-01T14:30:00.123000');
  });

  it('pads the microseconds within the millisecond to three digits', () => {
    const date = new Date(Date.UTC(2025, 11, 1, 14, 30, 0, 123));
    assert.equal(formatEventTimestamp(date, 0), '2025-12-01T14:30:00.123000');
    assert.equal(formatEventTimestamp(date, 7), '2025-12-01T14:30:00.123007');
    assert.equal(formatEventTimestamp(date, 45), '2025-12-01T14:30:00.123045');
    assert.equal(formatEventTimestamp(date, 999), '2025-12-01T14:30:00.123999');
  });

  it('pads every field with zeros', () => {
    assert.equal(formatEventTimestamp(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6))), '2024-01-02T03:04:05.006000');
  });

  it('does not depend on the local time zone', () => {
    const date = new Date(Date.UTC(2025, 0, 1, 0, 0, 0, 0));
    for (const tz of ['Asia/Tokyo', 'America/New_York', 'UTC']) {
      assert.equal(
        withTimeZone(tz, () => formatEventTimestamp(date)),
        '2025-01-01T00:00:00.000000',
        tz,
      );
    }
  });
});

describe('parseEventTimestamp', () => {
  it('reads a timestamp as UTC', () => {
    assert.equal(parseEventTimestamp('2025-12-01T14:30:00.123456').getTime(), Date.UTC(2025, 11, 1, 14, 30, 0, 123));
  });

  it('round-trips formatEventTimestamp to the millisecond', () => {
    const dates = [
      new Date(Date.UTC(2025, 11, 1, 14, 30, 0, 123)),
      new Date(Date.UTC(2000, 1, 29, 23, 59, 59, 999)),
      new Date(Date.UTC(1970, 0, 1, 0, 0, 0, 0)),
      new Date(Date.UTC(2038, 0, 19, 3, 14, 8, 1)),
    ];
    for (const date of dates) {
      for (const micros of [0, 1, 500, 999]) {
        assert.equal(parseEventTimestamp(formatEventTimestamp(date, micros)).getTime(), date.getTime());
      }
    }
  });
});

describe('parseEnvelope', () => {
  const valid: EventEnvelope = {
    event_id: '3f2b8c1e-9a4d-4c2b-8f1e-2d3c4b5a6978',
    event_type: 'defect.created',
    data: { defect_id: 1, title: 'Критическая ошибка', nested: { list: [1, 2] } },
    user_id: 1,
    timestamp: '2025-12-01T14:30:00.123456',
  };

  const assertAccepted = (body: string | Buffer, expected: EventEnvelope) => {
    const result = parseEnvelope(body);
    assert.ok('event' in result, `rejected: ${'error' in result ? result.error : ''}`);
    assert.deepEqual(result.event, expected);
  };

  const assertRejected = (body: string | Buffer, mention?: string | RegExp) => {
    const result = parseEnvelope(body);
    assert.ok('error' in result, `accepted: ${String(body)}`);
    assert.ok(!('event' in result));
    assert.equal(typeof result.error, 'string');
    assert.ok(result.error.length > 0);
    if (typeof mention === 'string')
      assert.ok(result.error.includes(mention), `"${result.error}" does not mention ${mention}`);
    else if (mention) assert.match(result.error, mention);
  };

  it('accepts a valid envelope given as a string', () => {
    assertAccepted(JSON.stringify(valid), valid);
  });

  it('accepts a valid envelope given as a UTF-8 Buffer', () => {
    assertAccepted(Buffer.from(JSON.stringify(valid), 'utf8'), valid);
  });

  it('accepts a null user_id and empty data', () => {
    const event = { ...valid, user_id: null, data: {} };
    assertAccepted(JSON.stringify(event), event);
  });

  it('rejects a body that is not JSON, with a reason', () => {
    for (const body of ['not json', '', '{"event_id": ', "{'a': 1}"]) assertRejected(body, 'not valid JSON');
    assertRejected(Buffer.from('{oops', 'utf8'), 'not valid JSON');
  });

  it('rejects JSON that is not an object', () => {
    for (const body of ['null', '[]', '42', '"defect.created"', 'true'])
      assertRejected(body, 'not a valid event envelope');
  });

  for (const field of ['event_id', 'event_type', 'data', 'user_id', 'timestamp'] as const) {
    it(`rejects an envelope without ${field}, naming it`, () => {
      const { [field]: _omitted, ...rest } = valid;
      assertRejected(JSON.stringify(rest), field);
    });
  }

  const wrong: Array<[string, keyof EventEnvelope, unknown]> = [
    ['user_id as a string', 'user_id', '1'],
    ['user_id as a fraction', 'user_id', 1.5],
    ['user_id as a boolean', 'user_id', true],
    ['data as an array', 'data', [1, 2]],
    ['data as null', 'data', null],
    ['data as a string', 'data', '{}'],
    ['timestamp with an offset', 'timestamp', '2025-12-01T14:30:00.123456+00:00'],
    ['timestamp with a Z', 'timestamp', '2025-12-01T14:30:00.123456Z'],
    ['timestamp with milliseconds only', 'timestamp', '2025-12-01T14:30:00.123'],
    ['timestamp without a fraction', 'timestamp', '2025-12-01T14:30:00'],
    ['timestamp with a space separator', 'timestamp', '2025-12-01 14:30:00.123456'],
    ['timestamp as a number', 'timestamp', 1764599400123],
    ['event_id that is not a UUID', 'event_id', 'not-a-uuid'],
    ['event_id in upper case', 'event_id', '3F2B8C1E-9A4D-4C2B-8F1E-2D3C4B5A6978'],
    ['event_id as a number', 'event_id', 1],
    ['event_type without a dot', 'event_type', 'defect'],
    ['event_type with capitals', 'event_type', 'Defect.Created'],
    ['event_type with three words', 'event_type', 'defect.created.now'],
  ];
  for (const [name, field, value] of wrong) {
    it(`rejects ${name}, naming the field`, () => {
      assertRejected(JSON.stringify({ ...valid, [field]: value }), field);
    });
  }
});
