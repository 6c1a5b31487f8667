import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout, one logger per process; services take children of it. */
export function createLogger(level: string, name = 'defect-control'): Logger {
  return pino({ level, name, base: { pid: process.pid } });
}
