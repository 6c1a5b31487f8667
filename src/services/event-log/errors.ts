import { defineError } from '../../platform/errors/domain-error.ts';

/** The event log's errors, each with its code and HTTP status. */
export const eventNotFound = defineError('EVENT_NOT_FOUND', 404, (eventId: string) => `Event ${eventId} not found`);

export const tooManyStreams = defineError(
  'EVENT_STREAMS_TOO_MANY',
  429,
  (why: string) => `${why}: close one and try again (docs/security.md, Limits)`,
);

export const badLastEventId = defineError(
  'EVENT_STREAM_BAD_LAST_EVENT_ID',
  400,
  (given: string, latest: number) =>
    `Last-Event-ID ${JSON.stringify(given)} is not a stream id: give a whole number from 0 to ${latest}, the latest id so far`,
);
