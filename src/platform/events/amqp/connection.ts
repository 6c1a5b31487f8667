import { Connection } from 'rabbitmq-client';
import type { Logger } from '../../logger.ts';
import type { TransportStatus } from '../transport.ts';
import { explainTopologyRefusal, isTopologyRefusal } from './topology.ts';

/** The connection, with what the transport knows of it: its last error, a refused topology, who waits for it. */
export interface BrokerLink {
  connection: Connection;
  log: Logger;
  /** Called whenever the transport becomes able to publish (start, reconnection, a queue bound). */
  onReady(listener: () => void): void;
  /** Calls the onReady listeners. */
  notifyReady(): void;
  /** Readiness and the log say what the broker refused and how to fix it. */
  noteTopologyRefusal(error: unknown): void;
  /** The broker took the topology (a publish went through, a consumer's queue is bound). */
  noteTopologyAccepted(): void;
  status(): TransportStatus;
}

/** RabbitMQ through rabbitmq-client, which reconnects and re-declares topology by itself. */
export function connectToBroker(options: { url: string; log: Logger; connectionName: string }): BrokerLink {
  const { log } = options;
  const connection = openConnection(options);
  const readyListeners: Array<() => void> = [];
  let lastError: string | undefined;
  let topologyError: string | undefined;
  const notifyReady = () => {
    for (const listener of readyListeners) listener();
  };

  connection.on('connection', () => {
    if (lastError) log.info('connected to RabbitMQ again');
    lastError = undefined;
    notifyReady();
  });
  connection.on('error', (error) => {
    const message = describeAmqpError(error);
    if (message !== lastError) log.warn({ err: error }, `RabbitMQ: ${message}`);
    lastError = message;
  });

  return {
    connection,
    log,
    onReady(listener) {
      readyListeners.push(listener);
    },
    notifyReady,
    noteTopologyRefusal(error) {
      if (!isTopologyRefusal(error)) return;
      const explanation = explainTopologyRefusal(error);
      if (explanation !== topologyError) log.error(explanation);
      topologyError = explanation;
    },
    noteTopologyAccepted() {
      topologyError = undefined;
    },
    status() {
      if (topologyError) return { ok: false, detail: topologyError };
      if (!connection.ready) return { ok: false, detail: `RabbitMQ unreachable: ${lastError ?? 'connecting'}` };
      return { ok: true, detail: 'connected to RabbitMQ' };
    },
  };
}

function openConnection(options: { url: string; connectionName: string }): Connection {
  return new Connection({
    url: options.url,
    connectionName: options.connectionName,
    // Fail a publish fast while disconnected: the outbox keeps the events, the relay retries.
    acquireTimeout: 5_000,
    retryLow: 200,
    retryHigh: 5_000,
    // Nagle's algorithm held pipelined publishes and acks back ~40 ms (delayed ACKs) under load.
    noDelay: true,
  });
}

function describeAmqpError(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  return code ? `${code}: ${message}` : String(message ?? error);
}
