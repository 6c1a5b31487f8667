import { createMembershipCopy } from '../membership-copy.ts';

/**
 * The event log's copy of project membership (decision 010): the shared copy (decision 008),
 * applied by the recorder in the transaction that records the events.
 */
export const eventLogMembers = createMembershipCopy('event_log');
