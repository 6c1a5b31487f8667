import type { ConsumeResult } from '../../metrics/metrics.ts';
import { contractViolation } from '../../../contracts/events.ts';
import { parseEnvelope, parseEventTimestamp, type EventEnvelope } from '../envelope.ts';
import type { DeliveryOutcome, IncomingMessage, Subscription } from '../transport.ts';
import { handleAlone } from './handle-alone.ts';
import { createBatchMode } from './handle-batch.ts';
import { createTogetherMode } from './handle-together.ts';
import { createInbox } from './inbox.ts';
import { failureOutcome } from './outcome.ts';
import type { EventConsumerOptions, HandleEvent } from './types.ts';

/** A started consumer: its options, its handling mode, its metrics counter. */
interface Consumer {
  options: EventConsumerOptions;
  handleEvent: HandleEvent;
  count(eventType: string, result: ConsumeResult): void;
}

/**
 * A consumer that acts on each event once: the event id goes into the inbox in the same
 * transaction as the handler's work, and the message is acknowledged only after it commits.
 * A failing handler is retried on the schedule, then parked; a message that is not an
 * event is parked at once. No message can make it throw.
 */
export function startEventConsumer(options: EventConsumerOptions): Subscription {
  const { name, retryDelaysMs, metrics } = options;
  const consumer: Consumer = {
    options,
    handleEvent: chooseHandlingMode(options),
    count: (eventType, result) => metrics?.eventsConsumed.inc({ consumer: name, event_type: eventType, result }),
  };
  return options.transport.subscribe({
    queue: name,
    bindings: options.batch?.bindings ?? Object.keys(options.handlers ?? {}),
    prefetch: Math.max(options.prefetch ?? options.batch?.maxEvents ?? 10, options.maxEventsPerTransaction ?? 0),
    retrySteps: retryDelaysMs.length,
    handle: async (message) => {
      try {
        return await consume(consumer, message);
      } catch (error) {
        // Only a bug gets here; still the message is kept, not lost.
        return { kind: 'park', reason: 'permanent_failure', error: String(error) };
      }
    },
  });
}

/** Batch handlers, else events taken together in one transaction, else each event alone. */
function chooseHandlingMode(options: EventConsumerOptions): HandleEvent {
  const context = {
    db: options.db,
    inbox: createInbox(options.schema, options.name),
    handlers: options.handlers ?? {},
  };
  if (options.batch) return createBatchMode(context, options.batch, options.log);
  if (options.maxEventsPerTransaction && options.maxEventsPerTransaction > 1) {
    return createTogetherMode(context, options.maxEventsPerTransaction);
  }
  return (delivery) => handleAlone(context, delivery);
}

/** One message's outcome: acknowledged once handled (or a duplicate), else retried or parked. */
async function consume(consumer: Consumer, message: IncomingMessage): Promise<DeliveryOutcome> {
  const checked = checkMessage(consumer, message);
  if ('outcome' in checked) return checked.outcome;
  const { event } = checked;
  const { log, metrics, name, retryDelaysMs } = consumer.options;
  const eventLog = log.child({
    event_id: event.event_id,
    event_type: event.event_type,
    request_id: message.headers['x-request-id'],
    traceparent: message.headers.traceparent,
  });
  const stopTimer = metrics?.handlerDuration.startTimer({ consumer: name, event_type: event.event_type });
  try {
    const result = await consumer.handleEvent({ event, message, log: eventLog });
    stopTimer?.();
    eventLog.debug({ attempt: message.attempt, duplicate: result === 'duplicate' }, 'event handled');
    if (result === 'handled') {
      metrics?.deliveryLatency.observe(
        { consumer: name },
        (Date.now() - parseEventTimestamp(event.timestamp).getTime()) / 1000,
      );
    }
    consumer.count(event.event_type, result === 'handled' ? 'ok' : 'duplicate');
    return { kind: 'ack' };
  } catch (error) {
    stopTimer?.();
    return failureOutcome(error, message.attempt, retryDelaysMs, eventLog, (result) =>
      consumer.count(event.event_type, result),
    );
  }
}

/** The message's event when it is one and its data keeps to the contract; else it is parked at once. */
function checkMessage(
  consumer: Consumer,
  message: IncomingMessage,
): { event: EventEnvelope } | { outcome: DeliveryOutcome } {
  const { log } = consumer.options;
  const parsed = parseEnvelope(message.body);
  if ('error' in parsed) {
    log.error({ routingKey: message.routingKey, reason: parsed.error }, 'message is not an event; parked');
    consumer.count('invalid', 'dead_letter'); // not the routing key: garbage must not mint label values
    return { outcome: { kind: 'park', reason: 'invalid_message', error: parsed.error } };
  }
  const { event } = parsed;
  const violation = contractViolation(event.event_type, event.data, 'consume');
  if (violation) {
    log.error(
      { event_id: event.event_id, event_type: event.event_type, reason: violation },
      'event data does not match the contract; parked',
    );
    consumer.count(event.event_type, 'dead_letter');
    return { outcome: { kind: 'park', reason: 'invalid_data', error: violation } };
  }
  return { event };
}
