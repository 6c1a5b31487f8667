/**
 * Every consumer's queue name: what services subscribe with, and what operators name when
 * they list or replay dead letters (here, from the gateway, or the `dlq` command).
 */
export const CONSUMER_NAMES = {
  defectsProjectDirectory: 'defects.project-directory',
  notificationsEmail: 'notifications.email',
} as const;

export const ALL_CONSUMERS: string[] = Object.values(CONSUMER_NAMES);
