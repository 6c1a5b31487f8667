import type { BatchEventHandler } from '../../platform/events/event-consumer.ts';
import { DELIVERIES_EXCHANGE, type DeliveryReport, type Subscription } from '../../platform/events/transport.ts';
import type { ServiceDeps, ServiceModule } from '../../platform/service.ts';
import { CONSUMER_NAMES } from '../consumer-names.ts';
import { createBatchWriter } from '../../platform/batch-writer.ts';
import { eventStore } from './event-store.ts';
import { createEventStream } from './event-stream.ts';
import { eventLogMigrations } from './migrations.ts';
import { eventLogRoutes } from './routes.ts';

const REPORT_RETRY_MS = 1_000;
const REPORT_RETRIES = 5;
const REPORT_BATCH = 100;
const REPORT_BATCH_WAIT_MS = 5;
const RECORD_BATCH = 100;
const RECORD_BATCH_WAIT_MS = 2;

export interface EventLogModule extends ServiceModule {
  /** Ends a user's open event streams at once (call it when their tokens are revoked); returns how many. */
  closeStreamsOfUser(userId: number): number;
}

/**
 * Every event, kept: history, filters, a live stream, and where each event stands at each
 * consumer (from the delivery reports consumers publish, not from guesses).
 */
export function createEventLogModule(deps: ServiceDeps): EventLogModule {
  const { db, transport, log, config } = deps;
  const stream = createEventStream({
    db,
    log,
    limits: {
      perUser: config.EVENT_STREAMS_PER_USER,
      perProcess: config.EVENT_STREAMS_PER_PROCESS,
      maxUnsentBytes: config.EVENT_STREAM_MAX_UNSENT_BYTES,
      catchUpPage: config.EVENT_STREAM_CATCH_UP_PAGE,
    },
  });
  // A revoked token must not keep its stream: the user's open streams end the moment this
  // process learns of a revocation (a stream opened with a newer token reconnects).
  const stopClosingRevoked = deps.revocations.onRevoked((userId) => stream.closeStreamsOfUser(userId));
  const record: BatchEventHandler = async (tx, events, context) => {
    await eventStore.recordMany(tx, events);
    context.afterCommit(() => stream.wake());
  };
  let reports: Subscription | undefined;
  // Every consumer reports every event: one upsert per report was a good share of the work
  // behind each write. Reports that arrive together are stored together.
  const reportWriter = createBatchWriter<DeliveryReport>({
    write: (batch) => eventStore.recordDeliveries(db, batch),
    maxBatch: REPORT_BATCH,
    maxWaitMs: REPORT_BATCH_WAIT_MS,
  });

  return {
    name: 'event_log',
    closeStreamsOfUser: (userId) => stream.closeStreamsOfUser(userId),
    migrations: eventLogMigrations,
    routes: eventLogRoutes({ db, stream }),
    // Many events to a transaction, numbered in the order they arrived (which the stream
    // follows): one transaction per event was most of the event log's cost under load.
    consumers: [
      {
        name: CONSUMER_NAMES.eventLogRecorder,
        batch: { handle: record, bindings: ['#'], maxEvents: RECORD_BATCH, maxWaitMs: RECORD_BATCH_WAIT_MS },
      },
    ],
    async start() {
      reports = transport.subscribe({
        queue: CONSUMER_NAMES.eventLogDeliveries,
        exchange: DELIVERIES_EXCHANGE,
        bindings: ['#'],
        prefetch: REPORT_BATCH,
        retrySteps: REPORT_RETRIES,
        reportOutcomes: false,
        async handle(message) {
          // A report, or (from the AMQP transport) the reports that were sent together.
          const stored = (Array.isArray(message.body) ? message.body : [message.body]).filter(isDeliveryReport);
          try {
            await Promise.all(stored.map((report) => reportWriter.add(report)));
            return { kind: 'ack' };
          } catch (error) {
            if (message.attempt > REPORT_RETRIES)
              return { kind: 'park', reason: 'retries_exhausted', error: String(error) };
            return { kind: 'retry', delayMs: REPORT_RETRY_MS, error: String(error) };
          }
        },
      });
    },
    async close() {
      stopClosingRevoked();
      await reports?.close();
    },
  };
}

/** What is not a report is dropped: there is nothing to store of it. */
function isDeliveryReport(report: unknown): report is DeliveryReport {
  const eventId = (report as DeliveryReport | null)?.event_id;
  return typeof eventId === 'string' && /^[0-9a-f-]{36}$/.test(eventId);
}
