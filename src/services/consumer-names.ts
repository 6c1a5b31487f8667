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
  /**
   * Each process's keeper of revoked tokens (platform/auth/revocation-keeper.ts), named after
   * the first service the process runs: the all-in-one process uses auth's.
   */
  authTokenRevocations: 'auth.token-revocations',
  projectsTokenRevocations: 'projects.token-revocations',
  defectsTokenRevocations: 'defects.token-revocations',
  notificationsTokenRevocations: 'notifications.token-revocations',
  eventLogTokenRevocations: 'event-log.token-revocations',
} as const;

/** The event consumers, each with its dead-letter queue. */
export const ALL_CONSUMERS: string[] = [
  CONSUMER_NAMES.defectsProjectDirectory,
  CONSUMER_NAMES.projectsUserDirectory,
  CONSUMER_NAMES.authProjectMembers,
  CONSUMER_NAMES.notificationsEmail,
  CONSUMER_NAMES.eventLogRecorder,
  CONSUMER_NAMES.eventLogDeliveries,
  CONSUMER_NAMES.authTokenRevocations,
  CONSUMER_NAMES.projectsTokenRevocations,
  CONSUMER_NAMES.defectsTokenRevocations,
  CONSUMER_NAMES.notificationsTokenRevocations,
  CONSUMER_NAMES.eventLogTokenRevocations,
];
