import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface LogCapture {
  log: Logger;
  lines: Array<Record<string, any>>;
  messages(): string[];
  /** The seed's `[EVENT] …` lines, in the order they were logged. */
  eventLines(): string[];
}

/** A real pino logger whose JSON lines the test can read back. */
export function captureLogs(level = 'info'): LogCapture {
  const lines: Array<Record<string, any>> = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      callback();
    },
  });
  const log = pino({ level, name: 'test' }, stream);
  return {
    log,
    lines,
    messages: () => lines.map((line) => String(line.msg)),
    eventLines: () => lines.map((line) => String(line.msg)).filter((msg) => msg.startsWith('[EVENT] ')),
  };
}
