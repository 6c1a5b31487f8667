import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Queryable } from '../db/database.ts';
import { outboxBacklog } from '../events/outbox.ts';
import { withTimeout } from '../timeout.ts';
import type { DeadLetterQueues } from '../events/transport.ts';

export type ConsumeResult = 'ok' | 'retry' | 'dead_letter' | 'duplicate';

/** A scrape must answer even when the broker does not: an unknown value is NaN, not a hang. */
const SCRAPE_TIMEOUT_MS = 1_000;

/** With the database down, the other metrics must still be served: unknown is NaN. */
const unreadable = () => ({ pending: Number.NaN, oldestSeconds: Number.NaN });

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * The process's Prometheus metrics: one registry for every service it hosts (the all-in-one
 * process serves them all on one /metrics). Gauges that describe stored state (outbox
 * backlog, dead letters) are read when scraped, so they are never stale.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const outboxes: Array<{ service: string; schema: string; db: Queryable }> = [];
  const deadLetterSources: Array<{ consumer: string; queues: DeadLetterQueues }> = [];

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
        for (const outbox of outboxes)
          this.set(
            { service: outbox.service },
            (await outboxBacklog(outbox.db, outbox.schema).catch(unreadable)).pending,
          );
      },
    }),
    outboxOldestAge: new Gauge({
      name: 'outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest unpublished event (0 when none)',
      labelNames: ['service'],
      registers,
      async collect() {
        for (const outbox of outboxes)
          this.set(
            { service: outbox.service },
            (await outboxBacklog(outbox.db, outbox.schema).catch(unreadable)).oldestSeconds ?? 0,
          );
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
        for (const source of deadLetterSources) {
          this.set(
            { consumer: source.consumer },
            await withTimeout(source.queues.count(source.consumer), SCRAPE_TIMEOUT_MS).catch(() => Number.NaN),
          );
        }
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
