/**
 * Operators' command for the dead-letter queues, with the services' configuration:
 *   npm run dlq -- list [--consumer NAME]
 *   npm run dlq -- show ID [--consumer NAME]
 *   npm run dlq -- replay (ID | --all) [--consumer NAME]
 *   npm run dlq -- purge (ID | --all) [--consumer NAME]
 */
import { parseArgs } from 'node:util';
import { Connection } from 'rabbitmq-client';
import { ConfigError, loadConfig, type Config } from '../platform/config.ts';
import { connectDatabase } from '../platform/db/connect.ts';
import { createAmqpDeadLetters } from '../platform/events/amqp/dead-letters.ts';
import { createInProcessTransport } from '../platform/events/in-process/transport.ts';
import type { DeadLetterQueues, ParkedMessage } from '../platform/events/transport.ts';
import { DomainError } from '../platform/errors/domain-error.ts';
import { createLogger } from '../platform/logger.ts';
import { DEFAULT_PORT } from '../all-in-one.ts';
import { ALL_CONSUMERS } from '../services/consumer-names.ts';
import { createDeadLetterService } from '../services/dead-letters/dead-letter-service.ts';

const USAGE = `usage:
  npm run dlq -- list [--consumer NAME]
  npm run dlq -- show ID [--consumer NAME]
  npm run dlq -- replay (ID | --all) [--consumer NAME]
  npm run dlq -- purge (ID | --all) [--consumer NAME]
consumers: ${ALL_CONSUMERS.join(', ')}`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { consumer: { type: 'string' }, all: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command, id] = positionals;
  if (values.help || !command) throw new UsageError();
  const config = loadConfig();
  const opened = await openDeadLetterQueues(config);
  const deadLetters = createDeadLetterService({ queues: opened.queues, consumers: ALL_CONSUMERS });
  try {
    switch (command) {
      case 'list':
        printList(await deadLetters.list(values.consumer));
        return 0;
      case 'show':
        if (!id) throw new UsageError();
        process.stdout.write(`${JSON.stringify(await deadLetters.show(id, values.consumer), null, 2)}\n`);
        return 0;
      case 'replay':
      case 'purge': {
        if (!id === !values.all) throw new UsageError();
        const selection = values.all ? ({ all: true } as const) : { id: id };
        const count = await deadLetters[command](selection, values.consumer);
        process.stdout.write(`${command === 'replay' ? 'replayed' : 'purged'} ${count}\n`);
        return 0;
      }
      default:
        throw new UsageError();
    }
  } finally {
    await opened.close();
  }
}

/** RabbitMQ's queues when AMQP_URL is set, else the embedded database's (with the server stopped). */
async function openDeadLetterQueues(config: Config): Promise<{ queues: DeadLetterQueues; close: () => Promise<void> }> {
  if (config.AMQP_URL) {
    const connection = new Connection({ url: config.AMQP_URL, connectionName: 'dlq-command' });
    await connection.onConnect(10_000);
    return { queues: createAmqpDeadLetters(connection), close: () => connection.close() };
  }
  if (!config.DATABASE_URL && (await isServerRunning(config.PORT ?? DEFAULT_PORT))) {
    throw new Error(
      'The embedded database is in use by the running server: stop it first, or use the admin API ' +
        '(GET/POST/DELETE /v1/admin/dead-letters) on the running server.',
    );
  }
  const db = await connectDatabase({ databaseUrl: config.DATABASE_URL, poolSize: 2, dataDir: config.DATA_DIR });
  const transport = await createInProcessTransport({ db, log: createLogger('warn', 'dlq') });
  return { queues: transport.deadLetters, close: () => db.close() };
}

async function isServerRunning(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5_000) });
    return true;
  } catch (error) {
    // Only a refused connection says nobody listens; a server too busy to answer in time is
    // still running, and opening its database beside it would corrupt it.
    return (error as { cause?: { code?: string } }).cause?.code !== 'ECONNREFUSED';
  }
}

function printList(messages: ParkedMessage[]): void {
  if (messages.length === 0) {
    process.stdout.write('no parked messages\n');
    return;
  }
  for (const message of messages) {
    const line = [
      message.consumer,
      message.eventType ?? '-',
      message.id,
      `attempts=${message.attempts}`,
      message.reason ?? '-',
      message.error,
    ];
    process.stdout.write(`${line.join('\t')}\n`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error & { code?: string }) => {
    if (error instanceof UsageError || error.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${error.message ? `${error.message}\n` : ''}${USAGE}\n`);
      process.exit(2);
    }
    const message =
      error instanceof ConfigError || error instanceof DomainError ? error.message : `dlq: ${error.message}`;
    process.stderr.write(`${message}\n`);
    process.exit(1);
  },
);
