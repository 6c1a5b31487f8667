import type { Queryable } from '../../platform/db/database.ts';

/**
 * At most `perHour` assignment e-mails to one person about one defect in any hour: a defect
 * tossed back and forth between two people must not flood their mailboxes. The events are
 * still recorded (the event log has every one); only the mail is left out.
 *
 * The count is of the mail that really left: notifications.sent_mail, which is written the
 * moment the SMTP server accepts a message and outlives a rolled-back attempt (sent-mail.ts).
 * A separate counter kept in the handler's transaction would forget the mail of an attempt
 * that failed after sending; this one cannot disagree with the mailbox. The defect's row in
 * the notifications copy is locked for the decision, so replicas decide about one defect one
 * after the other, each seeing the mail the one before it sent (see docs/decisions/011).
 */
export function createAssignmentMailLimit(options: { perHour: number }) {
  return {
    perHour: options.perHour,
    /** Whether one more assignment mail to `recipient` about `defectId` is within the limit. */
    async allows(tx: Queryable, recipient: string, defectId: number): Promise<boolean> {
      await tx.query('SELECT 1 FROM notifications.defects WHERE id = $1 FOR UPDATE', [defectId]);
      const { rows } = await tx.query<{ sent: number }>(
        `SELECT count(*)::int AS sent FROM notifications.sent_mail
         WHERE recipient = $1 AND defect_id = $2 AND event_type = 'defect.assigned'
           AND sent_at > now() - interval '1 hour'`,
        [recipient, defectId],
      );
      return rows[0].sent < options.perHour;
    },
  };
}

export type AssignmentMailLimit = ReturnType<typeof createAssignmentMailLimit>;
