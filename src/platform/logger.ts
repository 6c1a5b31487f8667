import { destination, pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout, one logger per process; services take children of it. Written
 * asynchronously (lines written while a write is pending go out together): a synchronous
 * write per line was a tenth of the process's time under load. pino flushes on exit and
 * on fatal.
 */
export function createLogger(level: string, name = 'defect-control'): Logger {
  return pino({ level, name, base: { pid: process.pid } }, destination({ dest: 1, sync: false }));
}
