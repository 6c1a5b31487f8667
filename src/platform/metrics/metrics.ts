import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Queryable } from '../db/database.ts';
import { outboxBacklog } from '../events/outbox.ts';
import { withTimeout } from '../timeout.ts';
import type { DeadLetterQueues } from '../events/transport.ts';
import { sharedReading } from './shared-reading.ts';

export type ConsumeResult = 'ok' | 'retry' | 'dead_letter' | 'duplicate';

/** A scrape must answer even when the broker or the database does not: an unknown value is NaN, not a hang. */
const SCRAPE_TIMEOUT_MS = 1_000;

/** How long one reading of the stored state serves scrapes when the host does not say. */
const DEFAULT_REFRESH_MS = 5_000;

/** What the scrape-time gauges show: read from the database and the broker, shared between scrapes. */
interface StoredState {
  outboxes: Map<string, { pending: number; oldestSeconds: number }>;
  deadLetters: Map<string, number>;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * The process's Prometheus metrics: one registry for every service it hosts (the all-in-one
 * process serves them all on one /metrics). Gauges that describe stored state (outbox
 * backlog, dead letters) are read when scraped, but one reading serves every scrape for
 * `refreshMs` and only one is in flight at a time: a flood of scrapes costs the database
 * pool one connection at most, never the connections requests need.
 */
export function createMetrics(options: { refreshMs?: number } = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const outboxes: Array<{ service: string; schema: string; db: Queryable }> = [];
  const deadLetterSources: Array<{ consumer: string; queues: DeadLetterQueues }> = [];

  const stateReads = new Counter({
    name: 'metrics_state_reads_total',
    help: 'Readings of the stored state (outbox backlog, dead letters) for the scrape-time gauges',
    registers,
  });
  const storedState = sharedReading<StoredState>({
    read: () => readStoredState(outboxes, deadLetterSources),
    maxAgeMs: options.refreshMs ?? DEFAULT_REFRESH_MS,
    waitMs: SCRAPE_TIMEOUT_MS,
    unknown: () => unknownState(outboxes, deadLetterSources),
    onRead: () => stateReads.inc(),
  });

  const metrics = {
    registry,
    eventsPublished: new Counter({
      name: 'events_published_total',
      help: 'Events published to the broker and confirmed',
      labelNames: ['service', 'event_type'],
      registers,
    }),
    publishErrors: new Counter({
      name: 'events_publish_errors_total',
      help: 'Relay batches the broker did not take',
      labelNames: ['service'],
      registers,
    }),
    outboxPending: new Gauge({
      name: 'outbox_pending_events',
      help: 'Committed events not yet published',
      labelNames: ['service'],
      registers,
      async collect() {
        for (const [service, backlog] of (await storedState()).outboxes) this.set({ service }, backlog.pending);
      },
    }),
    outboxOldestAge: new Gauge({
      name: 'outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest unpublished event (0 when none)',
      labelNames: ['service'],
      registers,
      async collect() {
        for (const [service, backlog] of (await storedState()).outboxes) this.set({ service }, backlog.oldestSeconds);
      },
    }),
    eventsConsumed: new Counter({
      name: 'events_consumed_total',
      help: 'Deliveries by outcome',
      labelNames: ['consumer', 'event_type', 'result'],
      registers,
    }),
    handlerDuration: new Histogram({
      name: 'event_handler_duration_seconds',
      help: 'Time in the handler, its transaction included',
      labelNames: ['consumer', 'event_type'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    deliveryLatency: new Histogram({
      name: 'event_delivery_latency_seconds',
      help: "From the event's timestamp to handled",
      labelNames: ['consumer'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    deadLetterMessages: new Gauge({
      name: 'dead_letter_messages',
      help: "Messages parked in a consumer's dead-letter queue",
      labelNames: ['consumer'],
      registers,
      async collect() {
        for (const [consumer, count] of (await storedState()).deadLetters) this.set({ consumer }, count);
      },
    }),
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request durations by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),

    watchOutbox(service: string, schema: string, db: Queryable) {
      outboxes.push({ service, schema, db });
      // A series from the start, so that rate() and increase() see the first error.
      metrics.publishErrors.inc({ service }, 0);
    },
    watchDeadLetters(consumer: string, queues: DeadLetterQueues) {
      deadLetterSources.push({ consumer, queues });
    },
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * One reading of every outbox and dead-letter queue, one after the other, so that a reading
 * holds one database connection at a time. A source that cannot be read shows NaN.
 */
async function readStoredState(
  outboxes: Array<{ service: string; schema: string; db: Queryable }>,
  deadLetterSources: Array<{ consumer: string; queues: DeadLetterQueues }>,
): Promise<StoredState> {
  const state = unknownState([], []);
  for (const outbox of outboxes) {
    const backlog = await outboxBacklog(outbox.db, outbox.schema).catch(() => undefined);
    state.outboxes.set(outbox.service, {
      pending: backlog?.pending ?? Number.NaN,
      oldestSeconds: backlog ? (backlog.oldestSeconds ?? 0) : Number.NaN,
    });
  }
  for (const source of deadLetterSources) {
    const count = await withTimeout(source.queues.count(source.consumer), SCRAPE_TIMEOUT_MS).catch(() => Number.NaN);
    state.deadLetters.set(source.consumer, count);
  }
  return state;
}

/** Every gauge NaN: the database or broker did not answer in time. */
function unknownState(
  outboxes: Array<{ service: string }>,
  deadLetterSources: Array<{ consumer: string }>,
): StoredState {
  return {
    outboxes: new Map(outboxes.map(({ service }) => [service, { pending: Number.NaN, oldestSeconds: Number.NaN }])),
    deadLetters: new Map(deadLetterSources.map(({ consumer }) => [consumer, Number.NaN])),
  };
}
