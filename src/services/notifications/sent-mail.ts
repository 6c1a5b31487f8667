import fs from 'node:fs/promises';
import path from 'node:path';
import type { Database, Queryable } from '../../platform/db/database.ts';

export interface SentMail {
  eventId: string;
  eventType: string;
  recipient: string;
  subject: string;
  messageId: string;
  /** The defect the mail is about, for the assignment-mail limit. */
  defectId: number | null;
}

/**
 * The record of which recipients of an event were already mailed, so that a retried or
 * replayed event mails only those it has not reached yet: exactly one e-mail per recipient
 * per event, even when the SMTP server took the mail for one recipient and refused it for
 * another (the handler then throws, its transaction rolls back, the event comes back).
 *
 * A success must therefore be recorded where the handler's rollback cannot undo it, at once,
 * before the next recipient is tried:
 *
 * - PostgreSQL: an INSERT through the module's pool (`db`), i.e. on another connection than
 *   the handler's transaction, committed on its own. Replicas share it, so a retry that
 *   lands on another replica sees it too.
 *
 * - PGlite (embedded): there is one connection, and the handler's transaction holds it; a
 *   `db.query` inside the handler would wait for that transaction forever (deadlock). So the
 *   success goes to a journal file under DATA_DIR/notifications (one file per event, a JSON
 *   line per recipient, fsync'ed) and, in the handler's transaction, into sent_mail. When the
 *   transaction commits the journal is redundant and removed; when it rolls back the journal
 *   remains, and the next attempt reads it and moves its records into sent_mail in its own
 *   transaction. Embedded mode is one process by construction (PGlite), so a local file is
 *   as shared as it needs to be.
 *
 * Either way, the only window left is a crash between the SMTP server's acceptance and the
 * record (milliseconds): the mail may then go out twice. No SMTP client can close it.
 */
export interface SentMailLog {
  /** Recipients of this event already mailed (in the database or, embedded, the journal). */
  served(tx: Queryable, eventId: string, afterCommit: (callback: () => void) => void): Promise<Set<string>>;
  /** Records one successful send, durably, so that a rollback of `tx` does not undo it. */
  record(tx: Queryable, mail: SentMail, afterCommit: (callback: () => void) => void): Promise<void>;
}

const INSERT_SQL = `
  INSERT INTO notifications.sent_mail (event_id, recipient, event_type, subject, message_id, defect_id)
  VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`;

const paramsOf = (mail: SentMail) => [
  mail.eventId,
  mail.recipient,
  mail.eventType,
  mail.subject,
  mail.messageId,
  // A journal line written before the column existed has none.
  mail.defectId ?? null,
];

async function servedInDatabase(tx: Queryable, eventId: string): Promise<Set<string>> {
  const { rows } = await tx.query<{ recipient: string }>(
    'SELECT recipient FROM notifications.sent_mail WHERE event_id = $1',
    [eventId],
  );
  return new Set(rows.map((row) => row.recipient));
}

export function createSentMailLog(options: { db: Database; dataDir: string }): SentMailLog {
  const { db } = options;
  if (db.kind !== 'embedded') {
    return {
      served: servedInDatabase,
      async record(_tx, mail) {
        await db.query(INSERT_SQL, paramsOf(mail));
      },
    };
  }

  const directory = path.join(options.dataDir, 'notifications', 'sent-journal');
  const journalOf = (eventId: string) => path.join(directory, `${eventId}.log`);
  const removeJournalAfterCommit = (eventId: string, afterCommit: (callback: () => void) => void) =>
    afterCommit(() => {
      fs.rm(journalOf(eventId), { force: true }).catch(() => undefined);
    });
  return {
    async served(tx, eventId, afterCommit) {
      const served = await servedInDatabase(tx, eventId);
      const journal = await fs.readFile(journalOf(eventId), 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return '';
        throw error;
      });
      const journaled = journal
        .split('\n')
        .filter((line) => line.trim())
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as SentMail];
          } catch {
            return []; // a line cut short by a crash: its mail is the one unrecorded case anyway
          }
        });
      // Sent by an attempt that rolled back: into sent_mail with this attempt's transaction.
      for (const mail of journaled.filter((mail) => !served.has(mail.recipient))) {
        await tx.query(INSERT_SQL, paramsOf(mail));
        served.add(mail.recipient);
      }
      if (journaled.length > 0) removeJournalAfterCommit(eventId, afterCommit);
      return served;
    },
    async record(tx, mail, afterCommit) {
      await fs.mkdir(directory, { recursive: true });
      const file = await fs.open(journalOf(mail.eventId), 'a');
      try {
        await file.appendFile(`${JSON.stringify(mail)}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      await tx.query(INSERT_SQL, paramsOf(mail));
      removeJournalAfterCommit(mail.eventId, afterCommit);
    },
  };
}
