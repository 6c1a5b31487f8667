import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Connection, type AsyncMessage } from 'rabbitmq-client';
import { emailOf, type TestUser } from './api-client.ts';
import type { TestQueue } from './broker.ts';
import { TEST_AMQP_URL } from './environment.ts';
import { parseMail, type SmtpSink } from './smtp-sink.ts';
import { eventually, type TestSystem } from './test-system.ts';

// "Nothing more came" cannot be shown by waiting a while: a slow machine delivers the extra
// message after the wait, a fast one wastes it. These helpers wait instead for something that
// can only happen after every message that could still come: a marker sent down the same
// ordered path (its arrival shows that everything queued before it has arrived), and, where
// a path is not ordered (a retried event comes back after later ones), an observable that
// says no further attempt will be made (the event is in the consumer's inbox, the outboxes
// are empty).

/** What the outbox checks need of a database: system.host.db, a pg.Pool or pg.Client. */
export interface SqlReader {
  query(sql: string, params?: unknown[]): Promise<{ rows: any[] }>;
}

/**
 * Waits until every `outbox` table (any schema) is empty. The relay deletes a row only once
 * the broker confirmed it and every row before it, and a confirm means the broker has routed
 * the message into every queue bound to it; with nothing left in the outboxes, nothing more
 * can be published (nor published again) until the next write.
 */
export async function waitForEmptyOutboxes(db: SqlReader, timeoutMs = 20_000): Promise<void> {
  let backlog = '';
  try {
    await eventually(async () => {
      const { rows: tables } = await db.query(`SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'outbox'`);
      if (tables.length === 0) throw new Error('no outbox table in this database');
      const { rows } = await db.query(
        tables.map((table) => `SELECT '${table.schema}' AS schema, count(*)::int AS rows FROM "${table.schema}".outbox`).join(' UNION ALL '),
      );
      backlog = rows.filter((row) => row.rows > 0).map((row) => `${row.schema}: ${row.rows}`).join(', ');
      return backlog === '';
    }, timeoutMs, 'empty outboxes');
  } catch (error) {
    throw new Error(`${(error as Error).message}${backlog ? ` (still waiting: ${backlog})` : ''}`, { cause: error });
  }
}

export interface SentinelQueue extends TestQueue {
  /** The exclusive queue's name (a marker is sent to it through the default exchange). */
  name: string;
  /**
   * Returns once every message the broker had put into this queue when it was called is in
   * `messages`: sends a marker straight to the queue and waits for it. One queue, one
   * consumer: the broker delivers in queue order, so what was queued before the marker
   * arrives before it. Markers never appear in `messages`.
   */
  drain(timeoutMs?: number): Promise<void>;
  /**
   * Nothing more can arrive from the system writing to `db` (until its next write): its
   * outboxes are empty (every event confirmed, so routed here), then drain().
   */
  settle(db: SqlReader, timeoutMs?: number): Promise<void>;
}

/**
 * bindTestQueue (broker.ts) with a name the test knows, so that a marker can be sent to this
 * queue alone: a marker published to `events` would also reach the services' queues
 * (`event-log.recorder` is bound to `#`) and change what the system records.
 */
export async function bindSentinelQueue(patterns: string[] = ['#']): Promise<SentinelQueue> {
  const connection = new Connection({ url: TEST_AMQP_URL, connectionName: 'test-sentinel-queue' });
  const messages: AsyncMessage[] = [];
  const markersSent = new Set<string>();
  const markersArrived = new Set<string>();
  const queue = `test.sentinel.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}`;
  const consumer = connection.createConsumer(
    {
      queue,
      queueOptions: { exclusive: true, autoDelete: true },
      exchanges: [{ exchange: 'events', type: 'topic', durable: true }],
      queueBindings: patterns.map((routingKey) => ({ exchange: 'events', queue, routingKey })),
    },
    async (message) => {
      // Pushed before any await: `messages` keeps the order of delivery.
      if (message.messageId && markersSent.has(message.messageId)) markersArrived.add(message.messageId);
      else messages.push(message);
    },
  );
  await new Promise<void>((resolve, reject) => {
    consumer.once('ready', resolve);
    consumer.once('error', reject);
  });
  const publisher = connection.createPublisher({ confirm: true });

  const drain = async (timeoutMs = 10_000) => {
    const marker = `sentinel-${randomUUID()}`;
    markersSent.add(marker);
    // The default exchange routes by queue name: only this queue gets it.
    await publisher.send({ exchange: '', routingKey: queue, messageId: marker, type: 'test.sentinel' }, 'sentinel');
    await eventually(() => markersArrived.has(marker), timeoutMs, `the marker sent to ${queue} to come back (${messages.length} messages so far)`);
  };

  return {
    name: queue,
    messages,
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline) {
          throw new Error(`expected ${count} messages, got ${messages.length}: ${messages.map((m) => m.routingKey).join(', ')}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return messages.slice(0, count);
    },
    drain,
    async settle(db, timeoutMs = 20_000) {
      await waitForEmptyOutboxes(db, timeoutMs);
      await drain(timeoutMs);
    },
    async close() {
      await publisher.close();
      await consumer.close();
      await connection.close();
    },
  };
}

/** How many messages went to an address so far, wherever the system's mail goes. */
export type MailCounter = (address: string) => number | Promise<number>;

/** Mail the SMTP sink received for an address (RCPT TO). */
export const smtpMailCounter = (sink: SmtpSink): MailCounter => (address) => sink.to(address).length;

/** The .eml files under `DATA_DIR/mail` addressed to an address (mail without SMTP_URL). */
export const emlMailCounter = (dataDir: string): MailCounter => async (address) => {
  const directory = path.join(dataDir, 'mail');
  const names = (await fs.readdir(directory).catch(() => [] as string[])).filter((name) => name.endsWith('.eml'));
  const mails = await Promise.all(names.map(async (name) => parseMail(await fs.readFile(path.join(directory, name), 'utf8'))));
  return mails.filter((mail) => mail.to.toLowerCase().includes(`<${address.toLowerCase()}>`)).length;
};

export interface MailSentinel {
  /**
   * Returns once no more mail can come for what happened before the call. First waits until
   * each event of `handled` is in the notifications inbox: its last attempt committed, so
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
 * The sentinel of a system's mail: a project, a defect and three users of its own, made on
 * the first settle() (so that a test's own numbering, defect #1, is left alone); the first
 * marker is the defect's creation with an assignee, every later one a reassignment between
 * two users, by the reporter (who is never mailed about his own change).
 */
export function createMailSentinel(system: TestSystem, mailsTo: MailCounter): MailSentinel {
  let parties: { reporter: TestUser; assignees: [TestUser, TestUser]; defectId: number } | undefined;
  let markers = 0;

  const waitForHandled = async (eventIds: string[], timeoutMs: number) => {
    for (const eventId of eventIds) {
      await eventually(
        async () => (await system.host.db.query('SELECT 1 FROM notifications.inbox WHERE event_id = $1', [eventId])).rows.length > 0,
        timeoutMs,
        `event ${eventId} handled for good by notifications (in its inbox)`,
      );
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
        const assignees: [TestUser, TestUser] = [await api.createUser('engineer'), await api.createUser('engineer')];
        const project = await api.post('/v1/projects', { name: 'Сигнальный объект' }, reporter.token);
        if (project.status !== 201) throw new Error(`sentinel project: ${project.status} ${JSON.stringify(project.body)}`);
        target = assignees[0];
        before = await mailsTo(emailOf(target));
        const defect = await api.post('/v1/defects', { project_id: project.body.id, title: 'Сигнальный дефект', assignee_id: target.id }, reporter.token);
        if (defect.status !== 201) throw new Error(`sentinel defect: ${defect.status} ${JSON.stringify(defect.body)}`);
        parties = { reporter, assignees, defectId: defect.body.id };
      } else {
        target = parties.assignees[markers % 2 === 1 ? 0 : 1];
        before = await mailsTo(emailOf(target));
        const moved = await api.patch(`/v1/defects/${parties.defectId}`, { assignee_id: target.id }, parties.reporter.token);
        if (moved.status !== 200) throw new Error(`sentinel reassignment: ${moved.status} ${JSON.stringify(moved.body)}`);
      }
      await eventually(async () => (await mailsTo(emailOf(target))) > before, timeoutMs, `the sentinel's marker mail #${markers} to ${emailOf(target)}`);
    },
    addresses: () => (parties ? [parties.reporter, ...parties.assignees].map(emailOf) : []),
  };
}
