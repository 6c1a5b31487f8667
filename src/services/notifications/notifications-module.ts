import { Counter } from 'prom-client';
import type { ServiceDeps, ServiceModule } from '../../platform/service.ts';
import { createAssignmentMailLimit } from './assignment-limit.ts';
import { CONSUMER_NAMES } from '../consumer-names.ts';
import { directoryHandlers } from './directory.ts';
import { createMailer } from './mailer.ts';
import { notificationsMigrations } from './migrations.ts';
import { createNotifier } from './notifier.ts';
import { createSentMailLog } from './sent-mail.ts';

/** The queue the service's one consumer reads (and `<queue>.retry.<n>`, `<queue>.dlq` beside it). */
export const NOTIFICATIONS_QUEUE = CONSUMER_NAMES.notificationsEmail;

/**
 * The seed's e-mail consumer made real: on a status change it mails the defect's reporter and
 * assignee, on an assignment the assignee, over SMTP (SMTP_URL) or, without it, as .eml files
 * under DATA_DIR/mail. What it needs to know of users, projects and defects it keeps from
 * their events in its own schema, fed by the same consumer, so that every event is taken in
 * the order it comes from one queue: one event after the other, up to 20 of those that
 * arrive together in one transaction (one each cost four statements; under load the queue
 * fell behind the writes).
 */
export function createNotificationsModule(deps: ServiceDeps): ServiceModule {
  const { config, db } = deps;
  const log = deps.log.child({ service: 'notifications' });
  const mailer = createMailer({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, dataDir: config.DATA_DIR });
  const sentMail = createSentMailLog({ db, dataDir: config.DATA_DIR });
  const suppressed = new Counter({
    name: 'notification_mails_suppressed_total',
    help: 'E-mails not sent because a limit held them back (assignment mails per recipient, defect and hour)',
    labelNames: ['event_type'],
    registers: [deps.metrics.registry],
  });
  // A series from the start, so that increase() sees the first one.
  suppressed.inc({ event_type: 'defect.assigned' }, 0);
  const notifier = createNotifier({
    mailer,
    sentMail,
    retryDelaysMs: config.retryDelaysMs,
    assignmentLimit: createAssignmentMailLimit({ perHour: config.ASSIGNMENT_MAILS_PER_HOUR }),
    onSuppressed: (eventType) => suppressed.inc({ event_type: eventType }),
  });
  return {
    name: 'notifications',
    migrations: notificationsMigrations,
    // Nothing public: the host's /healthz and /readyz are all it serves.
    routes: async () => undefined,
    consumers: [
      {
        name: NOTIFICATIONS_QUEUE,
        maxEventsPerTransaction: 20,
        handlers: { ...directoryHandlers, ...notifier.handlers },
      },
    ],
    async start() {
      log.info(`notifications: e-mail goes to ${mailer.description}`);
    },
    async close() {
      mailer.close();
    },
  };
}
