import { createHash } from 'node:crypto';
import type { Queryable } from '../../platform/db/database.ts';
import type { EventEnvelope } from '../../platform/events/envelope.ts';
import {
  PermanentFailure,
  type EventHandler,
  type EventHandlers,
  type HandlerContext,
} from '../../platform/events/event-consumer.ts';
import { directory, type KnownDefect, type KnownUser } from './directory.ts';
import {
  assignedMail,
  displayName,
  statusChangedMail,
  type DefectSummary,
  type MailContent,
  type RecipientRole,
} from './mail-messages.ts';
import { isPermanentSmtpRefusal, type Mailer } from './mailer.ts';
import type { SentMailLog } from './sent-mail.ts';
import type { AssignmentMailLimit } from './assignment-limit.ts';

interface Letter {
  user: KnownUser;
  content: MailContent;
  /** The line logged when it goes out (the seed's consumer line for status changes). */
  logLine: string;
  /** The defect the mail is about. */
  defectId: number;
  /** Counted against the assignment-mail limit (assignment-limit.ts). */
  limited?: boolean;
}

/** Not an error of the event: what it refers to has not arrived yet. Thrown, so the event is retried. */
class NotKnownYet extends Error {
  override name = 'NotKnownYet';
}

/**
 * The mailing handlers: who is told what, from the local copies (directory.ts), and the
 * sending itself, one message per recipient. The person who made the change is never mailed
 * about it.
 *
 * Sending happens inside the handler, so that an SMTP failure is the handler's failure: the
 * event goes through the consumer's retry schedule and, past it, into the dead-letter queue
 * (replayable). Each recipient reached is recorded at once where a rollback cannot undo it
 * (sent-mail.ts), and every attempt skips the recipients already recorded: exactly one e-mail
 * per recipient per event, however the attempts went.
 */
export function createNotifier(deps: {
  mailer: Mailer;
  sentMail: SentMailLog;
  retryDelaysMs: number[];
  assignmentLimit: AssignmentMailLimit;
  /** Called once per mail the limit held back, after the handler's transaction committed. */
  onSuppressed?: (eventType: string) => void;
}) {
  const { mailer, sentMail, assignmentLimit } = deps;

  /** Over the limit: not sent, logged and counted once the decision is committed. */
  const withinLimit = async (tx: Queryable, event: EventEnvelope, context: HandlerContext, letter: Letter) => {
    const address = letter.user.email.trim().toLowerCase();
    if (!letter.limited || (await assignmentLimit.allows(tx, address, letter.defectId))) return true;
    context.afterCommit(() => {
      deps.onSuppressed?.(event.event_type);
      context.log.info(
        { to: address, defect_id: letter.defectId, limit_per_hour: assignmentLimit.perHour },
        `e-mail not sent: ${assignmentLimit.perHour} assignment e-mails about defect #${letter.defectId} went to this address within the hour`,
      );
    });
    return false;
  };

  const requireUser = async (tx: Queryable, id: number) => {
    const user = await directory.findUser(tx, id);
    if (!user) throw new NotKnownYet(`user #${id} is not known yet (its user.registered has not arrived)`);
    return user;
  };

  const requireDefect = async (tx: Queryable, id: number) => {
    const defect = await directory.findDefect(tx, id);
    if (!defect || defect.reporter_id === null || defect.title === null) {
      throw new NotKnownYet(`defect #${id} is not known yet (its defect.created has not arrived)`);
    }
    return defect as KnownDefect & { reporter_id: number; title: string };
  };

  /**
   * The project's name for the body. A project missing from the copy is waited for (retry),
   * except on the last attempt: rather than park the mail for want of a name (a project
   * created before this service existed never gets one), it goes out naming the project by id.
   */
  const summarize = async (
    tx: Queryable,
    defect: KnownDefect & { title: string },
    context: HandlerContext,
  ): Promise<DefectSummary> => {
    const project = defect.project_id === null ? undefined : await directory.findProject(tx, defect.project_id);
    const lastAttempt = context.attempt > deps.retryDelaysMs.length;
    if (!project?.name && !lastAttempt) {
      throw new NotKnownYet(`project #${defect.project_id} is not known yet (its project.created has not arrived)`);
    }
    return { id: defect.id, title: defect.title, projectId: defect.project_id, projectName: project?.name ?? null };
  };

  /** Sends each letter not sent yet for this event; throws (retry) if any could not be sent. */
  const deliver = async (tx: Queryable, event: EventEnvelope, context: HandlerContext, letters: Letter[]) => {
    if (letters.length === 0) return;
    const afterCommit = (callback: () => void) => context.afterCommit(callback);
    const served = await sentMail.served(tx, event.event_id, afterCommit);
    const failures: Array<{ address: string; error: Error }> = [];
    for (const letter of letters) {
      const address = letter.user.email.trim().toLowerCase();
      if (served.has(address) || !(await withinLimit(tx, event, context, letter))) continue;
      const messageId = `<${event.event_id}.${createHash('sha256').update(address).digest('hex').slice(0, 16)}@defect-control>`;
      try {
        await mailer.send({
          to: { name: displayName(letter.user, letter.user.id), address: letter.user.email.trim() },
          subject: letter.content.subject,
          text: letter.content.text,
          html: letter.content.html,
          messageId,
          headers: { 'X-Defect-Control-Event': `${event.event_type} ${event.event_id}` },
        });
      } catch (error) {
        failures.push({ address, error: error as Error });
        continue;
      }
      served.add(address);
      await sentMail.record(
        tx,
        {
          eventId: event.event_id,
          eventType: event.event_type,
          recipient: address,
          subject: letter.content.subject,
          messageId,
          defectId: letter.defectId,
        },
        afterCommit,
      );
      context.log.info({ to: address, via: mailer.description }, letter.logLine);
    }
    if (failures.length === 0) return;
    const message =
      `${failures.length} of ${letters.length} e-mail(s) for ${event.event_type} not sent (${mailer.description}): ` +
      failures.map(({ address, error }) => `${address}: ${error.message}`).join('; ');
    // 5xx is the server's final word on those recipients: parked at once, replayable by hand.
    if (failures.every(({ error }) => isPermanentSmtpRefusal(error))) throw new PermanentFailure(message);
    throw new Error(message);
  };

  const statusChanged: EventHandler<'defect.status_changed'> = async (tx, event, context) => {
    const { defect_id, old_status, new_status, changed_by } = event.data;
    await directory.setStatus(tx, defect_id, new_status, event.timestamp);
    const defect = await requireDefect(tx, defect_id);
    // Deleted since (this event was retried past its deletion): news of it would only confuse.
    if (defect.deleted_at) return;

    const roles = new Map<number, RecipientRole[]>();
    for (const [id, role] of [
      [defect.reporter_id, 'reporter'],
      [defect.assignee_id, 'assignee'],
    ] as const) {
      if (id === null || id === changed_by) continue;
      roles.set(id, [...(roles.get(id) ?? []), role]);
    }
    if (roles.size === 0) return;
    const summary = await summarize(tx, defect, context);
    const changedBy = displayName(await directory.findUser(tx, changed_by), changed_by);
    const letters: Letter[] = [];
    for (const [id, userRoles] of roles) {
      const user = await requireUser(tx, id);
      letters.push({
        user,
        content: statusChangedMail({
          defect: summary,
          oldStatus: old_status,
          newStatus: new_status,
          changedBy,
          recipientName: displayName(user, id),
          roles: userRoles,
        }),
        logLine: `Отправка email: Дефект #${defect_id} изменил статус на '${new_status}'`,
        defectId: defect_id,
      });
    }
    await deliver(tx, event, context, letters);
  };

  const assigned: EventHandler<'defect.assigned'> = async (tx, event, context) => {
    const { defect_id, assignee_id, assigned_by } = event.data;
    await directory.setAssignee(tx, defect_id, assignee_id, event.timestamp);
    if (assignee_id === assigned_by) return;
    const defect = await requireDefect(tx, defect_id);
    if (defect.deleted_at) return;
    const assignee = await requireUser(tx, assignee_id);
    const summary = await summarize(tx, defect, context);
    const assignedBy = displayName(await directory.findUser(tx, assigned_by), assigned_by);
    await deliver(tx, event, context, [
      {
        user: assignee,
        content: assignedMail({
          defect: summary,
          status: defect.status,
          priority: defect.priority,
          assignedBy,
          recipientName: displayName(assignee, assignee_id),
        }),
        logLine: `Отправка email: Дефект #${defect_id} назначен исполнителю ${displayName(assignee, assignee_id)}`,
        defectId: defect_id,
        limited: true,
      },
    ]);
  };

  return {
    handlers: {
      'defect.status_changed': statusChanged,
      'defect.assigned': assigned,
    } satisfies EventHandlers,
  };
}
