/**
 * Every consumer's queue name: what services subscribe with, and what operators name when
 * they list or replay dead letters (here, from the gateway, or the `dlq` command).
 */
export const CONSUMER_NAMES = {
  defectsProjectDirectory: 'defects.project-directory',
  projectsUserDirectory: 'projects.user-directory',
  authProjectMembers: 'auth.project-members',
  notificationsEmail: 'notifications.email',
  eventLogRecorder: 'event-log.recorder',
  /** Reads consumers' delivery reports (not events); parks a report it cannot store. */
  eventLogDeliveries: 'event-log.deliveries',
} as const;

/** The event consumers, each with its dead-letter queue. */
export const ALL_CONSUMERS: string[] = [
  CONSUMER_NAMES.defectsProjectDirectory,
  CONSUMER_NAMES.projectsUserDirectory,
  CONSUMER_NAMES.authProjectMembers,
  CONSUMER_NAMES.notificationsEmail,
  CONSUMER_NAMES.eventLogRecorder,
  CONSUMER_NAMES.eventLogDeliveries,
];
