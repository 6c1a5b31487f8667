import net from 'node:net';
import { Connection, type AsyncMessage } from 'rabbitmq-client';
import { TEST_AMQP_URL } from './environment.ts';

export interface TestQueue {
  messages: AsyncMessage[];
  /** Resolves once `count` messages arrived (rejects after the timeout, naming what did). */
  waitFor(count: number, timeoutMs?: number): Promise<AsyncMessage[]>;
  close(): Promise<void>;
}

/** An exclusive queue bound to `events`, recording every message it receives. */
export async function bindTestQueue(patterns: string[] = ['#']): Promise<TestQueue> {
  const connection = new Connection({ url: TEST_AMQP_URL, connectionName: 'test-queue' });
  const messages: AsyncMessage[] = [];
  const queue = `test.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}`;
  const consumer = connection.createConsumer(
    {
      queue,
      queueOptions: { exclusive: true, autoDelete: true },
      exchanges: [{ exchange: 'events', type: 'topic', durable: true }],
      queueBindings: patterns.map((routingKey) => ({ exchange: 'events', queue, routingKey })),
    },
    async (message) => {
      messages.push(message);
    },
  );
  await new Promise<void>((resolve, reject) => {
    consumer.once('ready', resolve);
    consumer.once('error', reject);
  });
  return {
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
    async close() {
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
