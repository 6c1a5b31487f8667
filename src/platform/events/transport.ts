import type { Queryable } from '../db/database.ts';

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

/** A delivered message; `body` is the decoded JSON when it parsed, else the raw bytes or text. */
export interface IncomingMessage {
  routingKey: string;
  body: unknown;
  headers: Record<string, unknown>;
  messageId?: string;
  /** 1 on the first delivery, n on the n-th try through the retry schedule. */
  attempt: number;
}

/** What the consumer decided; the transport carries it out before acknowledging. */
export type DeliveryOutcome =
  | { kind: 'ack' }
  | { kind: 'retry'; delayMs: number; error: string }
  | { kind: 'park'; reason: ParkReason; error: string };

export type ParkReason = 'invalid_message' | 'invalid_data' | 'retries_exhausted' | 'permanent_failure';

export interface SubscriptionOptions {
  /** The consumer's durable queue (`<queue>.retry.<n>` and `<queue>.dlq` beside it). */
  queue: string;
  /** `events` unless said otherwise (the event log also reads `event-deliveries`). */
  exchange?: string;
  /**
   * Publish a DeliveryReport for every outcome (default): how the event log knows, rather
   * than guesses, where each event stands at each consumer.
   */
  reportOutcomes?: boolean;
  /** Topic patterns on the `events` exchange (`defect.*`, `#`). */
  bindings: string[];
  prefetch: number;
  /** How many retry steps the schedule has (one delay queue each). */
  retrySteps: number;
  /** Never throws: every message ends in an outcome. */
  handle(message: IncomingMessage): Promise<DeliveryOutcome>;
}

export interface Subscription {
  /** Resolves once the queue and its bindings exist (a first start must not miss events). */
  ready: Promise<void>;
  /** Stops taking messages and waits for those in hand. */
  close(): Promise<void>;
}

/** A message parked in a consumer's dead-letter queue. */
export interface ParkedMessage {
  /** The event id when the message was an event, else an id given when it was parked. */
  id: string;
  consumer: string;
  eventType: string | null;
  attempts: number;
  /** null when the message carries none (it was not parked by a consumer). */
  reason: ParkReason | null;
  error: string;
  parkedAt: string;
  /** The message as received: the event, or the text that was not one. */
  body: unknown;
}

export type ParkedSelection = { id: string } | { all: true };

/** Operations on the dead-letter queues, the same on RabbitMQ and in-process. */
export interface DeadLetterQueues {
  count(consumer: string): Promise<number>;
  list(consumer: string): Promise<ParkedMessage[]>;
  /** Back to the consumer's queue with the attempt count reset; returns how many. */
  replay(consumer: string, selection: ParkedSelection): Promise<number>;
  purge(consumer: string, selection: ParkedSelection): Promise<number>;
}

export interface TransportStatus {
  ok: boolean;
  detail: string;
}

export interface EventTransport {
  readonly kind: 'amqp' | 'in-process';
  /** Resolves once every message is safely with the broker (confirmed), or stored in its queues. */
  publish(messages: OutgoingMessage[]): Promise<void>;
  /**
   * Only a transport whose queues are in the relay's database (in-process): stores the
   * messages through `tx`, the relay's transaction that also deletes them from the outbox,
   * so the hand-over neither loses nor repeats. The relay uses it instead of `publish` when
   * present.
   */
  handOver?(tx: Queryable, messages: OutgoingMessage[]): Promise<void>;
  subscribe(options: SubscriptionOptions): Subscription;
  readonly deadLetters: DeadLetterQueues;
  /** Called whenever the transport becomes able to publish (start, reconnection). */
  onReady(listener: () => void): void;
  isReady(): boolean;
  status(): TransportStatus;
  close(): Promise<void>;
}

/** Headers the consumer runtime and transports use on retried and parked messages. */
export const HEADERS = {
  attempt: 'x-attempt',
  lastError: 'x-last-error',
  parkReason: 'x-park-reason',
  parkError: 'x-park-error',
  parkedAt: 'x-parked-at',
  routingKey: 'x-original-routing-key',
} as const;

export const EVENTS_EXCHANGE = 'events';
export const DELIVERIES_EXCHANGE = 'event-deliveries';

/** A consumer's outcome for one event, published on `event-deliveries` with the consumer as routing key. */
export interface DeliveryReport {
  event_id: string;
  event_type: string;
  consumer: string;
  status: 'handled' | 'retrying' | 'parked';
  attempt: number;
  next_attempt_at: string | null;
  error: string | null;
  reason: ParkReason | null;
  at: string;
}

export function deliveryReport(
  consumer: string,
  message: { messageId?: string; routingKey: string; attempt: number },
  outcome: DeliveryOutcome,
): DeliveryReport {
  const now = new Date();
  return {
    event_id: message.messageId ?? '',
    event_type: message.routingKey,
    consumer,
    status: outcome.kind === 'ack' ? 'handled' : outcome.kind === 'retry' ? 'retrying' : 'parked',
    attempt: message.attempt,
    next_attempt_at: outcome.kind === 'retry' ? new Date(now.getTime() + outcome.delayMs).toISOString() : null,
    error: outcome.kind === 'ack' ? null : outcome.error,
    reason: outcome.kind === 'park' ? outcome.reason : null,
    at: now.toISOString(),
  };
}

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
