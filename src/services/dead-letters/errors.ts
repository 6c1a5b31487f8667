import { defineError } from '../../platform/errors/domain-error.ts';

/** The dead-letter admin API's errors, each with its code and HTTP status. */
export const deadLetterNotFound = defineError('DEAD_LETTER_NOT_FOUND', 404, (id: string) => `No parked message ${id}`);
export const unknownConsumer = defineError(
  'UNKNOWN_CONSUMER',
  422,
  (consumer: string, consumers: string[]) => `Unknown consumer '${consumer}'; consumers: ${consumers.join(', ')}`,
);
