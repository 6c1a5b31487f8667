import net from 'node:net';
import { exportPKCS8, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import {
  createTokenVerifier,
  TOKEN_ALGORITHM,
  TOKEN_AUDIENCE,
  TOKEN_ISSUER,
  type Role,
} from '../../src/platform/auth/access-token.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { createEvent, type EventEnvelope } from '../../src/platform/events/envelope.ts';
import { startHost, type RunningHost } from '../../src/platform/service-host.ts';
import { createEventLogModule, type EventLogModule } from '../../src/services/event-log/event-log-module.ts';
import { deleteQueues } from '../support/broker.ts';
import { SERVICE_QUEUES, TEST_AMQP_URL, TEST_POSTGRES_URL } from '../support/environment.ts';
import { freePort } from '../support/free-port.ts';
import { captureLogs, type LogCapture } from '../support/log-capture.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { dropDatabase, eventually } from '../support/test-system.ts';
import { publishEvents } from '../support/wire-events.ts';

// The event-log service alone, fed with events put on the wire (as the projects and defects
// services would publish them, membership events included, which no API publishes yet) and
// read with tokens the test signs itself: short-lived ones for the expiry test.

const keys = await generateKeyPair(TOKEN_ALGORITHM, { extractable: true });
const publicKeyPem = await exportSPKI(keys.publicKey);
export const privateKeyPem = await exportPKCS8(keys.privateKey);

export interface Reader {
  id: number;
  role: Role;
  token: string;
}

/** A token for a user id and role, as auth signs it, expiring after `ttlSeconds`. */
export async function reader(id: number, role: Role = 'engineer', ttlSeconds = 3600): Promise<Reader> {
  const token = await new SignJWT({ username: `reader${id}`, role })
    .setProtectedHeader({ alg: TOKEN_ALGORITHM })
    .setSubject(String(id))
    .setIssuer(TOKEN_ISSUER)
    .setAudience(TOKEN_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(keys.privateKey);
  return { id, role, token };
}

/** The environment of an event-log service with a database of its own. */
export async function eventLogEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  await deleteQueues(SERVICE_QUEUES);
  return {
    DATABASE_URL: `${TEST_POSTGRES_URL}/dc_test_eventlog_${process.pid}_${Date.now()}`,
    AMQP_URL: TEST_AMQP_URL,
    JWT_PUBLIC_KEY: publicKeyPem,
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export interface EventLogHost {
  url: string;
  host: RunningHost;
  module: EventLogModule;
  /** The host's warnings and errors. */
  logs: LogCapture;
  close(): Promise<void>;
}

/** The event-log module on a host in this process, with its module at hand (closeStreamsOfUser). */
export async function startEventLogHost(extra: Record<string, string> = {}): Promise<EventLogHost> {
  const env = await eventLogEnv(extra);
  const port = await freePort();
  const config = loadConfig({ ...env, PORT: String(port), HOST: '127.0.0.1' });
  let module: EventLogModule | undefined;
  const logs = captureLogs('warn');
  const host = await startHost({
    config,
    log: logs.log,
    name: 'event-log-test',
    port,
    verifyToken: createTokenVerifier(keys.publicKey),
    modules: (deps) => [(module = createEventLogModule(deps))],
  });
  return {
    url: `http://127.0.0.1:${port}`,
    host,
    module: module!,
    logs,
    async close() {
      await host.close();
      await dropDatabase(env.DATABASE_URL);
    },
  };
}

/** The event-log service as its own process (`npm run start:event-log`). */
export async function startEventLogProcess(
  extra: Record<string, string> = {},
): Promise<ServiceProcess & { close(): Promise<void> }> {
  const env = await eventLogEnv(extra);
  const service = await startProcess('src/services/event-log/main.ts', env, await freePort());
  return Object.assign(service, {
    async close() {
      await service.stop();
      await dropDatabase(env.DATABASE_URL);
    },
  });
}

/** Events as their services publish them; `by` is the envelope's user_id. */
export const events = {
  projectCreated: (projectId: number, ownerId: number, name = `Объект ${projectId}`) =>
    createEvent('project.created', { project_id: projectId, name, owner_id: ownerId }, ownerId),
  projectUpdated: (projectId: number, by: number, name: string) =>
    createEvent('project.updated', { project_id: projectId, name, updated_by: by }, by),
  projectDeleted: (projectId: number, by: number) =>
    createEvent('project.deleted', { project_id: projectId, deleted_by: by }, by),
  memberAdded: (projectId: number, userId: number, by: number) =>
    createEvent('project.member_added', { project_id: projectId, user_id: userId, added_by: by }, by),
  memberRemoved: (projectId: number, userId: number, by: number) =>
    createEvent('project.member_removed', { project_id: projectId, user_id: userId, removed_by: by }, by),
  defectCreated: (defectId: number, projectId: number, reporterId: number) =>
    createEvent(
      'defect.created',
      {
        defect_id: defectId,
        title: `Дефект ${defectId}`,
        status: 'Новая',
        priority: 'Средний',
        project_id: projectId,
        reporter_id: reporterId,
      },
      reporterId,
    ),
  defectAssigned: (defectId: number, assigneeId: number, by: number) =>
    createEvent('defect.assigned', { defect_id: defectId, assignee_id: assigneeId, assigned_by: by }, by),
  defectUnassigned: (defectId: number, previousId: number, by: number) =>
    createEvent('defect.unassigned', { defect_id: defectId, previous_assignee_id: previousId, unassigned_by: by }, by),
  defectDeleted: (defectId: number, by: number) =>
    createEvent('defect.deleted', { defect_id: defectId, deleted_by: by }, by),
  userRegistered: (userId: number) =>
    createEvent(
      'user.registered',
      {
        user_id: userId,
        username: `reader${userId}`,
        email: `reader${userId}@example.com`,
        full_name: null,
        role: 'engineer',
      },
      userId,
    ),
};

/** Publishes the events in order and waits until the last is recorded (an admin sees it). */
export async function publishAndRecord(url: string, admin: Reader, published: EventEnvelope[]): Promise<void> {
  await publishEvents(published);
  const last = published.at(-1)!;
  await eventually(
    async () =>
      (await fetch(`${url}/v1/events/${last.event_id}`, { headers: { authorization: `Bearer ${admin.token}` } }))
        .status === 200,
    20_000,
    `event ${last.event_type} recorded`,
  );
}

/** GET as a reader: status and JSON body. */
export async function getAs(url: string, path: string, who: Reader, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${who.token}`, ...headers } });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** A stream whose client reads its headers, then nothing: its data piles up at the server. */
export async function nonReadingStream(url: string, who: Reader) {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.write(
    `GET /v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${who.token}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  let bytes = 0;
  let text = '';
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (text.length < 1000) text += chunk.toString('latin1');
  });
  await eventually(() => text.includes(': connected'), 10_000, 'the stream connected');
  socket.pause();
  return {
    /** Starts reading again: what the kernel held comes, then the end (if the server dropped it). */
    async readToEnd() {
      socket.resume();
      let timer: NodeJS.Timeout | undefined;
      const kept = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not dropped: ${bytes} bytes read, still open`)), 30_000);
      });
      await Promise.race([closed, kept]).finally(() => clearTimeout(timer));
      socket.destroy();
      return { bytes };
    },
  };
}
