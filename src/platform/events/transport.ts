/** What a relay hands to the broker: one committed event, serialised once when it was stored. */
export interface OutgoingMessage {
  routingKey: string;
  messageId: string;
  type: string;
  appId: string;
  timestamp: Date;
  /** The UTF-8 JSON envelope. */
  body: Buffer;
  /** Tracing and correlation (x-request-id, traceparent): never in the body. */
  headers: Record<string, string>;
}

/** A delivered message; `body` is the decoded JSON when it parsed, else the raw bytes. */
export interface IncomingMessage {
  routingKey: string;
  body: unknown;
  headers: Record<string, unknown>;
  redelivered: boolean;
}

export interface SubscriptionOptions {
  /** The consumer's durable queue. */
  queue: string;
  /** Topic patterns on the `events` exchange (`defect.*`, `#`). */
  bindings: string[];
  prefetch: number;
  /** Resolves: the message is acknowledged. Rejects: it is delivered again later. */
  handle(message: IncomingMessage): Promise<void>;
}

export interface Subscription {
  /** Stops taking messages and waits for those in hand. */
  close(): Promise<void>;
}

export interface TransportStatus {
  ok: boolean;
  detail: string;
}

export interface EventTransport {
  readonly kind: 'amqp' | 'in-process';
  /** Resolves once the broker has confirmed every message; rejects if any was not. */
  publish(messages: OutgoingMessage[]): Promise<void>;
  subscribe(options: SubscriptionOptions): Subscription;
  /** Called whenever the transport becomes able to publish (start, reconnection). */
  onReady(listener: () => void): void;
  isReady(): boolean;
  status(): TransportStatus;
  close(): Promise<void>;
}

export const EVENTS_EXCHANGE = 'events';

/** AMQP topic matching: `*` is one word, `#` zero or more. */
export function topicMatches(pattern: string, routingKey: string): boolean {
  const words = routingKey.split('.');
  const parts = pattern.split('.');
  const match = (p: number, w: number): boolean => {
    if (p === parts.length) return w === words.length;
    if (parts[p] === '#') return match(p + 1, w) || (w < words.length && match(p, w + 1));
    if (w === words.length) return false;
    return (parts[p] === '*' || parts[p] === words[w]) && match(p + 1, w + 1);
  };
  return match(0, 0);
}
