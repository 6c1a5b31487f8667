// The RabbitMQ transport lives in amqp/ (amqp/amqp-transport.ts assembles it); the service host, tests and bench import it from here.
export { createAmqpTransport } from './amqp/amqp-transport.ts';
