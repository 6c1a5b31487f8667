import { CONSUMER_NAMES } from '../../src/services/consumer-names.ts';

/** Where the tests find PostgreSQL and RabbitMQ (the README's defaults; override to point elsewhere). */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432';
export const TEST_AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/**
 * The durable queues the services declare, with their retry and dead-letter queues: a fresh
 * database must not inherit messages an earlier test left in them.
 */
export const SERVICE_QUEUES = Object.values(CONSUMER_NAMES).flatMap((queue) => [
  queue,
  `${queue}.dlq`,
  ...Array.from({ length: 10 }, (_, index) => `${queue}.retry.${index + 1}`),
]);
