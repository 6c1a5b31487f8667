import { CONSUMER_NAMES } from '../../src/services/consumer-names.ts';

/** Where the tests find PostgreSQL (the README's default; override to point elsewhere). */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432';

/**
 * Where the tests find RabbitMQ: a vhost of their own (`scripts/ensure-services.sh` creates
 * it), never the default vhost `/`, so that a deployment on the same broker keeps its queues
 * and messages while the tests delete and re-declare theirs.
 */
export const TEST_AMQP_VHOST = 'defect-control-test';
export const TEST_AMQP_URL = process.env.TEST_AMQP_URL ?? `amqp://guest:guest@127.0.0.1:5672/${TEST_AMQP_VHOST}`;

/**
 * A second vhost on the same broker, standing in for a deployment beside the tests: a test
 * checks that what the tests and the bench delete there stays (only when TEST_AMQP_URL is
 * the default, since `scripts/ensure-services.sh` creates it then).
 */
export const NEIGHBOUR_AMQP_URL = process.env.TEST_AMQP_URL
  ? undefined
  : 'amqp://guest:guest@127.0.0.1:5672/defect-control-test-neighbour';

/** TEST_AMQP_URL's broker address, for a TCP proxy in front of it. */
export function testBrokerAddress(): { host: string; port: number } {
  const url = new URL(TEST_AMQP_URL);
  return { host: url.hostname, port: Number(url.port || 5672) };
}

/** TEST_AMQP_URL reached through a proxy listening on 127.0.0.1:`port` (same credentials and vhost). */
export function amqpUrlThroughPort(port: number): string {
  const url = new URL(TEST_AMQP_URL);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return url.toString();
}

/**
 * The durable queues the services declare, with their retry and dead-letter queues: a fresh
 * database must not inherit messages an earlier test left in them.
 */
export const SERVICE_QUEUES = Object.values(CONSUMER_NAMES).flatMap((queue) => [
  queue,
  `${queue}.dlq`,
  ...Array.from({ length: 10 }, (_, index) => `${queue}.retry.${index + 1}`),
]);
