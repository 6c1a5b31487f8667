import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Connection, type AsyncMessage } from 'rabbitmq-client';
import { EVENTS_EXCHANGE } from '../../src/platform/events/transport.ts';
import { TEST_AMQP_URL } from './environment.ts';

// "Nothing more came" cannot be shown by waiting a while: a slow machine delivers the extra
// message after the wait, a fast one wastes it. A test queue waits instead for something that
// can only happen after every message that could still come: a marker sent down the same
// ordered path (its arrival shows that everything queued before it has arrived) and, for what
// the system may still publish, empty outboxes (every event confirmed, so routed).

/** Polls `check` every 20 ms until it holds; after `timeoutMs` throws what `failure` says. */
async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, failure: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(failure());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

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
  await until(
    async () => {
      const { rows: tables } = await db.query(
        `SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'outbox'`,
      );
      if (tables.length === 0) throw new Error('no outbox table in this database');
      const { rows } = await db.query(
        tables
          .map((table) => `SELECT '${table.schema}' AS schema, count(*)::int AS rows FROM "${table.schema}".outbox`)
          .join(' UNION ALL '),
      );
      backlog = rows
        .filter((row) => row.rows > 0)
        .map((row) => `${row.schema}: ${row.rows}`)
        .join(', ');
      return backlog === '';
    },
    timeoutMs,
    () => `timed out waiting for empty outboxes (still waiting: ${backlog})`,
  );
}

export interface TestQueue {
  /** The exclusive queue's name (a marker is sent to it through the default exchange). */
  name: string;
  /** Every message received, in the order of delivery (markers left out). */
  messages: AsyncMessage[];
  /** Resolves once `count` messages arrived (rejects after the timeout, naming what did). */
  waitFor(count: number, timeoutMs?: number): Promise<AsyncMessage[]>;
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
  close(): Promise<void>;
}

/**
 * An exclusive queue bound to a topic exchange (`events` unless told otherwise, e.g.
 * `event-deliveries` for delivery reports), recording every message it receives. Its name is
 * the test's own, so that drain()'s marker goes to this queue alone: a marker published to
 * `events` would also reach the services' queues (`event-log.recorder` is bound to `#`) and
 * change what the system records.
 */
export async function bindTestQueue(
  patterns: string[] = ['#'],
  { exchange = EVENTS_EXCHANGE }: { exchange?: string } = {},
): Promise<TestQueue> {
  const connection = new Connection({ url: TEST_AMQP_URL, connectionName: 'test-queue' });
  const messages: AsyncMessage[] = [];
  const markersSent = new Set<string>();
  const markersArrived = new Set<string>();
  const queue = `test.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}`;
  const consumer = connection.createConsumer(
    {
      queue,
      queueOptions: { exclusive: true, autoDelete: true },
      // The broker counts a message delivered once it is sent: there is no ack to send, so none
      // can fail on a channel that close() is shutting while deliveries still arrive.
      noAck: true,
      exchanges: [{ exchange, type: 'topic', durable: true }],
      queueBindings: patterns.map((routingKey) => ({ exchange, queue, routingKey })),
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
    const marker = `marker-${randomUUID()}`;
    markersSent.add(marker);
    // The default exchange routes by queue name: only this queue gets it.
    await publisher.send({ exchange: '', routingKey: queue, messageId: marker, type: 'test.marker' }, 'marker');
    await until(
      () => markersArrived.has(marker),
      timeoutMs,
      () => `timed out waiting for the marker sent to ${queue} to come back (${messages.length} messages so far)`,
    );
  };

  return {
    name: queue,
    messages,
    async waitFor(count, timeoutMs = 10_000) {
      await until(
        () => messages.length >= count,
        timeoutMs,
        () => `expected ${count} messages, got ${messages.length}: ${messages.map((m) => m.routingKey).join(', ')}`,
      );
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

/** Runs fn with a short-lived broker connection (declare, delete, publish by hand). */
export async function withBroker<T>(fn: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = new Connection({ url: TEST_AMQP_URL, connectionName: 'test-admin' });
  try {
    await connection.onConnect(5_000);
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

export async function deleteQueues(names: string[]): Promise<void> {
  await withBroker(async (connection) => {
    for (const queue of names) await connection.queueDelete({ queue });
  });
}

export interface TcpProxy {
  port: number;
  /** Closes the listener and every open connection: clients now get "connection refused". */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A TCP proxy to the broker that a test can cut and restore, as an outage would. */
export async function startTcpProxy(target: { host: string; port: number }, port = 0): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let boundPort = port;

  const listen = async () => {
    server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server!.listen(boundPort, '127.0.0.1', resolve));
    boundPort = (server.address() as net.AddressInfo).port;
  };

  const stop = async () => {
    if (!server) return;
    const closing = new Promise((resolve) => server!.close(resolve));
    for (const socket of sockets) socket.destroy();
    await closing;
    server = undefined;
  };

  await listen();
  return { port: boundPort, stop, start: listen, close: stop };
}

export type StallDirection = 'both' | 'to-broker';

export interface StallableTcpProxy {
  port: number;
  /**
   * Keeps every connection (and accepts new ones) but forwards nothing more in `direction`;
   * what arrives is dropped. 'both': a broker that takes publishes and never confirms them.
   * 'to-broker': the broker's deliveries still arrive, the client's acks and publishes never
   * reach it.
   */
  stall(direction?: StallDirection): void;
  /**
   * Forwards again. Connections that were stalled are cut (their byte streams lost data, as
   * after a partition), so their clients connect again.
   */
  resume(): void;
  close(): Promise<void>;
}

/** A TCP proxy to the broker that a test can stall without closing it, as a partition or a hung broker would. */
export async function startStallableTcpProxy(target: { host: string; port: number }): Promise<StallableTcpProxy> {
  const connections = new Set<{ client: net.Socket; upstream: net.Socket; stalled: boolean }>();
  let stalled: StallDirection | undefined;
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    const connection = { client, upstream, stalled: stalled !== undefined };
    connections.add(connection);
    client.on('data', (chunk) => {
      if (stalled) connection.stalled = true;
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (stalled === 'both') connection.stalled = true;
      else client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => socket.destroy());
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
        connections.delete(connection);
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    stall(direction = 'both') {
      stalled = direction;
      for (const connection of connections) connection.stalled = true;
    },
    resume() {
      stalled = undefined;
      for (const connection of connections) {
        if (connection.stalled) connection.client.destroy();
      }
    },
    async close() {
      const closing = new Promise((resolve) => server.close(resolve));
      for (const { client } of connections) client.destroy();
      await closing;
    },
  };
}
