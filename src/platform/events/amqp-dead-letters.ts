// The dead-letter queues on RabbitMQ live in amqp/dead-letters.ts; the gateway and the dlq command import them from here.
export { bodyBytes, copyProperties, createAmqpDeadLetters, deadLetterQueueOf, parkedMessageId, retryQueueOf } from './amqp/dead-letters.ts';
