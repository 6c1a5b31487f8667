import { topicMatches } from '../../platform/events/transport.ts';
import { eventLogMembers } from './members.ts';

/** What a reader asks for; the same filter serves the list, the stream and the history. */
export interface EventFilter {
  event_type?: string;
  project_id?: number;
  defect_id?: number;
  user_id?: number;
  from?: string;
  to?: string;
  /**
   * The non-admin who reads: only events of projects they are a member of (and of those
   * projects' defects), and user.* events about themselves. Absent for admins, who see all.
   */
  viewer?: number;
}

export interface RecordedEvent {
  seq: number;
  event_id: string;
  event_type: string;
  user_id: number | null;
  timestamp: string;
  occurred_at: Date;
  data: Record<string, unknown>;
  project_id: number | null;
  defect_id: number | null;
  /** For user.* events: the user the event is about (data.user_id). */
  subject_user_id: number | null;
}

/** The filter as SQL conditions over event_log.events, parameters numbered from `firstParam`. */
export function filterToSql(filter: EventFilter, firstParam = 1): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (condition: (placeholder: string, position: number) => string, value: unknown) => {
    params.push(value);
    const position = firstParam + params.length - 1;
    where.push(condition(`$${position}`, position));
  };
  if (filter.event_type !== undefined) add((p) => `('.' || event_type) ~ ${p}`, topicPatternToRegex(filter.event_type));
  if (filter.project_id !== undefined) add((p) => `project_id = ${p}`, filter.project_id);
  if (filter.defect_id !== undefined) add((p) => `defect_id = ${p}`, filter.defect_id);
  if (filter.user_id !== undefined) add((p) => `user_id = ${p}`, filter.user_id);
  if (filter.from !== undefined) add((p) => `occurred_at >= ${p}`, filter.from);
  if (filter.to !== undefined) add((p) => `occurred_at < ${p}`, filter.to);
  if (filter.viewer !== undefined) add((p, position) => visibleToSql(p, position), filter.viewer);
  return { where, params };
}

/** What a non-admin may see, in SQL: their projects' events (membership now), and user.* events about them. */
function visibleToSql(viewer: string, position: number): string {
  return `(project_id IN (${eventLogMembers.projectsOf(position)}) OR subject_user_id = ${viewer})`;
}

/**
 * The same rule in memory, for the live stream: `isMember` answers for the event's project
 * from memberships read after the event was recorded.
 */
export function isVisibleTo(
  event: RecordedEvent,
  viewer: number | undefined,
  isMember: (projectId: number) => boolean,
): boolean {
  if (viewer === undefined) return true;
  if (event.project_id !== null) return isMember(event.project_id);
  return event.subject_user_id === viewer;
}

/** The same filter in memory, for events the live stream pushes (visibility apart: see isVisibleTo). */
export function matchesFilter(event: RecordedEvent, filter: EventFilter): boolean {
  return (
    (filter.event_type === undefined || topicMatches(filter.event_type, event.event_type)) &&
    (filter.project_id === undefined || event.project_id === filter.project_id) &&
    (filter.defect_id === undefined || event.defect_id === filter.defect_id) &&
    (filter.user_id === undefined || event.user_id === filter.user_id) &&
    (filter.from === undefined || event.occurred_at >= new Date(filter.from)) &&
    (filter.to === undefined || event.occurred_at < new Date(filter.to))
  );
}

/**
 * AMQP topic pattern (`defect.*`, `#.deleted`) as a POSIX regex over the routing key with a
 * dot in front ('.' || event_type): then every word, `#`'s included, is "a dot and a word".
 */
export function topicPatternToRegex(pattern: string): string {
  const words = pattern.split('.').map((word) => {
    if (word === '#') return '(\\.[^.]+)*';
    if (word === '*') return '\\.[^.]+';
    return `\\.${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
  });
  return `^${words.join('')}$`;
}

/** The envelope as published, from a recorded event. */
export function toEnvelope(event: RecordedEvent) {
  return {
    event_id: event.event_id,
    event_type: event.event_type,
    data: event.data,
    user_id: event.user_id,
    timestamp: event.timestamp,
  };
}
