/** Where the tests find PostgreSQL and RabbitMQ (the README's defaults; override to point elsewhere). */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432';
export const TEST_AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Durable queues the services declare; a fresh database must not inherit their old messages. */
export const SERVICE_QUEUES = ['defects.project-directory'];
