import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { formatEventLogLine, pythonJsonDumps } from '../../../src/platform/events/python-json.ts';

/**
 * Runs a Python snippet with `payload` as UTF-8 JSON on stdin and returns what it prints as
 * JSON (ASCII-escaped on the way back, so no locale can mangle the transport).
 */
function runPython(script: string, payload: unknown): unknown {
  const program = ['import json, sys', "payload = json.loads(sys.stdin.buffer.read().decode('utf-8'))", script].join(
    '\n',
  );
  const output = execFileSync('python3', ['-c', program], {
    input: Buffer.from(JSON.stringify(payload), 'utf8'),
    env: { ...process.env, PYTHONIOENCODING: 'utf-8' },
  });
  return JSON.parse(output.toString('utf8'));
}

/** Python's `json.dumps(value, ensure_ascii=False)` for each value, in one python3 run. */
function pythonDumpsAll(values: unknown[]): string[] {
  const result = runPython(
    'sys.stdout.write(json.dumps([json.dumps(value, ensure_ascii=False) for value in payload]))',
    values,
  );
  assert.ok(Array.isArray(result));
  return result as string[];
}

const allControlCharacters = Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code)).join('');

const CASES: Array<[name: string, value: unknown]> = [
  ['null', null],
  ['true', true],
  ['false', false],
  ['zero', 0],
  ['positive integer', 42],
  ['negative integer', -17],
  ['largest safe integer', Number.MAX_SAFE_INTEGER],
  ['smallest safe integer', Number.MIN_SAFE_INTEGER],
  ['empty string', ''],
  ['ASCII string', 'plain text'],
  ['Cyrillic string', 'Критическая ошибка'],
  ['statuses', 'Новая В работе Решена Закрыта Отменена'],
  ['double quotes', 'say "hi"'],
  ['backslashes', 'C:\\path\\to\\file \\n is not a newline'],
  ['newline', 'line1\nline2'],
  ['carriage return + newline', 'a\r\nb'],
  ['tab', 'col1\tcol2'],
  ['backspace and form feed', 'a\bb\fc'],
  ['every C0 control character', allControlCharacters],
  ['NUL, unit separator, escape', '\u0000\u001f\u001b'],
  ['DEL (not escaped by Python)', 'a\u007fb'],
  ['C1 control and line/paragraph separators', '\u0085\u2028\u2029'],
  ['slash and HTML-ish', '</script> & <b>'],
  ['non-BMP emoji', 'дом 🏗️ 😀'],
  ['accents and CJK', 'é ü ß 中文 日本語'],
  ['mixed quotes, backslashes, Cyrillic and controls', 'Проект "А"\\Б\n\tконец\u0001'],
  ['empty array', []],
  ['empty object', {}],
  ['flat array', [1, 'два', null, true, false]],
  ['nested arrays', [[[]], [[1], [2, [3]]]]],
  ['array of empties', [{}, [], '']],
  ['flat object', { a: 1, b: 'two', c: null, d: true, e: false }],
  ['object keeps insertion order', { zeta: 1, alpha: 2, middle: 3 }],
  ['nested objects', { a: { b: [1, { c: null, d: [] }], e: {} }, f: [{ g: 'h' }] }],
  ['Cyrillic keys and values', { ключ: 'значение', статус: 'В работе' }],
  ['keys needing escapes', { 'a"b': 1, 'c\nd': 2, 'e\\f': 3, 'g\th': 4, '\u0002': 5 }],
  [
    'defect.created data',
    {
      defect_id: 1,
      title: 'Критическая ошибка',
      status: 'Новая',
      priority: 'Высокий',
      project_id: 1,
      reporter_id: 1,
    },
  ],
  ['defect.status_changed data', { defect_id: 7, old_status: 'Новая', new_status: 'В работе', changed_by: null }],
  ['project.created data', { project_id: 3, name: 'Тестовый проект', owner_id: 2 }],
];

describe('pythonJsonDumps matches python3 json.dumps(value, ensure_ascii=False)', () => {
  const expected = pythonDumpsAll(CASES.map(([, value]) => value));

  it('python3 produced one result per case', () => {
    assert.equal(expected.length, CASES.length);
  });

  CASES.forEach(([name, value], index) => {
    it(name, () => {
      assert.equal(pythonJsonDumps(value), expected[index]);
    });
  });

  it('writes Cyrillic unescaped and uses ", " and ": " separators', () => {
    const dumped = pythonJsonDumps({ title: 'Ошибка', tags: ['a', 'b'] });
    assert.equal(dumped, '{"title": "Ошибка", "tags": ["a", "b"]}');
    assert.doesNotMatch(dumped, /\\u04/);
  });

  it('escapes other control characters as lowercase \\u00XX, as Python does', () => {
    assert.equal(pythonJsonDumps('\u001b\u001f\u000b'), '"\\u001b\\u001f\\u000b"');
  });

  it('leaves out object members that are undefined (what Python writes for the dict without them)', () => {
    const [withoutMember] = pythonDumpsAll([{ a: 1, c: [null] }]);
    assert.equal(pythonJsonDumps({ a: 1, b: undefined, c: [undefined] }), withoutMember);
  });
});

describe('formatEventLogLine', () => {
  it('writes the seed line exactly', () => {
    const id = randomUUID();
    const line = formatEventLogLine({
      event_type: 'defect.created',
      event_id: id,
      user_id: 1,
      data: { defect_id: 1, title: 'Критическая ошибка' },
    });
    assert.equal(
      line,
      `[EVENT] defect.created | ID: ${id} | User: 1 | Data: {"defect_id": 1, "title": "Критическая ошибка"}`,
    );
  });

  it('prints None for a null user_id, as a Python f-string does', () => {
    const id = randomUUID();
    const line = formatEventLogLine({
      event_type: 'user.registered',
      event_id: id,
      user_id: null,
      data: { user_id: 5 },
    });
    assert.equal(line, `[EVENT] user.registered | ID: ${id} | User: None | Data: {"user_id": 5}`);
  });

  it('prints None for a missing (undefined) user_id too', () => {
    const line = formatEventLogLine({ event_type: 'a.b', event_id: 'x', user_id: undefined, data: {} });
    assert.equal(line, '[EVENT] a.b | ID: x | User: None | Data: {}');
  });

  it('prints 0 for user 0 (only None is special)', () => {
    const line = formatEventLogLine({ event_type: 'a.b', event_id: 'x', user_id: 0, data: {} });
    assert.equal(line, '[EVENT] a.b | ID: x | User: 0 | Data: {}');
  });

  it("equals the seed's Python f-string for the same events", () => {
    const events = [
      {
        event_type: 'defect.created',
        event_id: randomUUID(),
        user_id: 1,
        data: { defect_id: 1, title: 'Критическая ошибка' },
      },
      {
        event_type: 'defect.updated',
        event_id: randomUUID(),
        user_id: null,
        data: { defect_id: 2, changes: { title: 'a "b"\n' } },
      },
      { event_type: 'project.deleted', event_id: randomUUID(), user_id: 12, data: { project_id: 4, name: 'Дом\t№1' } },
    ];
    const expected = runPython(
      [
        'lines = []',
        'for e in payload:',
        "    lines.append(f\"[EVENT] {e['event_type']} | ID: {e['event_id']} | User: {e['user_id']} | Data: {json.dumps(e['data'], ensure_ascii=False)}\")",
        'sys.stdout.write(json.dumps(lines))',
      ].join('\n'),
      events,
    );
    assert.deepEqual(events.map(formatEventLogLine), expected);
  });
});
