import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { closeOnSignals } from './service-host.ts';

/** The shared start of every `main`: config, logger, graceful shutdown, clear failure. */
export function runMain(
  name: string,
  start: (config: Config, log: Logger) => Promise<{ close(): Promise<void> }>,
): void {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\nSee the configuration table in docs/configuration.md.\n`);
    process.exit(2);
  }
  const log = createLogger(config.LOG_LEVEL, name);
  start(config, log).then(
    (running) => closeOnSignals(running, log),
    (error: Error) => {
      log.fatal({ err: error }, `${name} failed to start: ${error.message}`);
      process.exit(1);
    },
  );
}
