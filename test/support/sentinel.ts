import fs from 'node:fs/promises';
import path from 'node:path';
import { CONSUMER_NAMES } from '../../src/services/consumer-names.ts';
import { emailOf, type TestUser } from './api-client.ts';
import { parseMail, type SmtpSink } from './smtp-sink.ts';
import { eventually, type TestSystem } from './test-system.ts';

// "No more mail can come" cannot be shown by waiting a while: a slow machine sends the extra
// mail after the wait, a fast one wastes it. The mail sentinel waits instead for something that
// can only happen after every mail that could still come: an observable that says no further
// attempt of an event will be made (its delivery status), and a marker mail caused after
// everything else (its arrival shows that everything queued before it was handled). For the
// same on a queue of messages, see bindTestQueue's drain() and settle() (broker.ts).

/** How many messages went to an address so far, wherever the system's mail goes. */
export type MailCounter = (address: string) => number | Promise<number>;

/** Mail the SMTP sink received for an address (RCPT TO). */
export const smtpMailCounter =
  (sink: SmtpSink): MailCounter =>
  (address) =>
    sink.to(address).length;

/** The .eml files under `DATA_DIR/mail` addressed to an address (mail without SMTP_URL). */
export const emlMailCounter =
  (dataDir: string): MailCounter =>
  async (address) => {
    const directory = path.join(dataDir, 'mail');
    const names = (await fs.readdir(directory).catch(() => [] as string[])).filter((name) => name.endsWith('.eml'));
    const mails = await Promise.all(
      names.map(async (name) => parseMail(await fs.readFile(path.join(directory, name), 'utf8'))),
    );
    return mails.filter((mail) => mail.to.toLowerCase().includes(`<${address.toLowerCase()}>`)).length;
  };

export interface MailSentinel {
  /**
   * Returns once no more mail can come for what happened before the call. First waits until
   * each event of `handled` is reported handled by notifications.email (GET /v1/events/{id},
   * as the sentinel's own admin): its last attempt committed, so
   * every mail it sends is out and no retry of it will come (a retried event comes back after
   * later ones, which a marker alone cannot rule out). Then causes a marker mail, an
   * assignment of the sentinel's own defect, and waits for it: the notifications consumer
   * takes its queue one event after the other, in queue order, and the marker's event was
   * published after everything the test had seen published, so when its mail is out every
   * event queued before it (a copy of one included) has been handled.
   */
  settle(options?: { handled?: string[]; timeoutMs?: number }): Promise<void>;
  /** The sentinel's users, whose mail a test may have to leave out of a count. */
  addresses(): string[];
}

/**
 * The sentinel of a system's mail: a project, a defect and users of its own, made on the
 * first settle() (so that a test's own numbering, defect #1, is left alone); the first
 * marker is the defect's creation with an assignee, every later one a reassignment to a
 * user made for it, by the reporter (who is never mailed about his own change). A new user
 * each time: the assignment-mail limit (ASSIGNMENT_MAILS_PER_HOUR) would hold back a marker
 * to someone who already got that many about the sentinel's defect.
 */
export function createMailSentinel(system: TestSystem, mailsTo: MailCounter): MailSentinel {
  let parties: { reporter: TestUser; assignees: TestUser[]; projectId: number; defectId: number } | undefined;
  let markers = 0;

  let admin: TestUser | undefined;

  /**
   * Each event's delivery status for notifications.email, as an admin reads it
   * (GET /v1/events/{id}): `handled` is reported only after the attempt's transaction
   * committed (the mail is sent inside it), and nothing comes after it; `retrying` and
   * `parked` are not enough (a retry is still to come, or a replay may follow).
   */
  const waitForHandled = async (eventIds: string[], timeoutMs: number) => {
    if (eventIds.length === 0) return;
    admin ??= await system.api.createUser('admin');
    const token = admin.token;
    for (const eventId of eventIds) {
      let seen = 'not recorded yet';
      await eventually(
        async () => {
          const response = await system.api.get(`/v1/events/${eventId}`, token);
          if (response.status !== 200) return false;
          const delivery = (
            response.body.deliveries as Array<{ consumer: string; status: string; attempt: number }>
          ).find((candidate) => candidate.consumer === CONSUMER_NAMES.notificationsEmail);
          seen = delivery ? `${delivery.status} at attempt ${delivery.attempt}` : 'no delivery reported';
          return delivery?.status === 'handled';
        },
        timeoutMs,
        `event ${eventId} handled for good by ${CONSUMER_NAMES.notificationsEmail}`,
      ).catch((error: Error) => {
        throw new Error(`${error.message} (its delivery: ${seen})`, { cause: error });
      });
    }
  };

  return {
    async settle({ handled = [], timeoutMs = 30_000 } = {}) {
      await waitForHandled(handled, timeoutMs);
      const { api } = system;
      markers += 1;
      let target: TestUser;
      let before: number;
      if (!parties) {
        const reporter = await api.createUser('engineer');
        const assignees = [await api.createUser('engineer')];
        const project = await api.post('/v1/projects', { name: 'Сигнальный объект' }, reporter.token);
        if (project.status !== 201)
          throw new Error(`sentinel project: ${project.status} ${JSON.stringify(project.body)}`);
        await api.addMembers(project.body.id, reporter.token, ...assignees);
        target = assignees[0];
        before = await mailsTo(emailOf(target));
        const defect = await api.post(
          '/v1/defects',
          { project_id: project.body.id, title: 'Сигнальный дефект', assignee_id: target.id },
          reporter.token,
        );
        if (defect.status !== 201) throw new Error(`sentinel defect: ${defect.status} ${JSON.stringify(defect.body)}`);
        parties = { reporter, assignees, projectId: project.body.id, defectId: defect.body.id };
      } else {
        target = await api.createUser('engineer');
        await api.addMembers(parties.projectId, parties.reporter.token, target); // an assignee must be a member
        parties.assignees.push(target);
        before = await mailsTo(emailOf(target));
        const moved = await api.patch(
          `/v1/defects/${parties.defectId}`,
          { assignee_id: target.id },
          parties.reporter.token,
        );
        if (moved.status !== 200)
          throw new Error(`sentinel reassignment: ${moved.status} ${JSON.stringify(moved.body)}`);
      }
      await eventually(
        async () => (await mailsTo(emailOf(target))) > before,
        timeoutMs,
        `the sentinel's marker mail #${markers} to ${emailOf(target)}`,
      );
    },
    addresses: () =>
      [...(parties ? [parties.reporter, ...parties.assignees] : []), ...(admin ? [admin] : [])].map(emailOf),
  };
}
