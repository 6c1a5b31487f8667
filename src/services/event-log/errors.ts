import { defineError } from '../../platform/errors/domain-error.ts';

/** The event log's errors, each with its code and HTTP status. */
export const eventNotFound = defineError('EVENT_NOT_FOUND', 404, (eventId: string) => `Event ${eventId} not found`);
