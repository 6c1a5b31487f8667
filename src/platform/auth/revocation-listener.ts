import type { Connection } from 'rabbitmq-client';
import { contractViolation } from '../../contracts/events.ts';
import { parseEnvelope } from '../events/envelope.ts';
import { EXCHANGE_DECLARATION } from '../events/amqp/topology.ts';
import type { Logger } from '../logger.ts';
import type { TokenRevocations } from './token-revocations.ts';

/** The `user.*` events that void a user's older tokens (see token-revocations.ts). */
export const REVOKING_EVENTS = ['user.role_changed', 'user.disabled', 'user.password_changed'] as const;

export interface RevocationListener {
  /** Resolves once the queue is bound: revocations from then on reach this process. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Revocations for a process without a database (the gateway): a queue of its own, named by
 * the server, exclusive to this connection and gone with it, so that every replica gets
 * every event. Kept in memory only; applying an event twice is harmless (a user's valid
 * generation only rises), so there is no inbox. What the process does not learn: revocations
 * from before its queue was bound (at start, or while the broker connection was down, when
 * the queue is declared anew). Those tokens still expire by ACCESS_TOKEN_TTL_SECONDS.
 */
export function listenForRevocations(options: {
  connection: Connection;
  revocations: TokenRevocations;
  log: Logger;
}): RevocationListener {
  const { connection, revocations, log } = options;
  const consumer = connection.createConsumer(
    {
      queue: '',
      queueOptions: { exclusive: true, autoDelete: true },
      exchanges: [EXCHANGE_DECLARATION],
      // An empty queue name in a bind means the queue just declared on the channel.
      queueBindings: REVOKING_EVENTS.map((routingKey) => ({
        exchange: EXCHANGE_DECLARATION.exchange,
        queue: '',
        routingKey,
      })),
      qos: { prefetchCount: 50 },
    },
    async (message) => {
      applyRevocation(message.body, revocations, log);
    },
  );
  consumer.on('error', (error) => log.warn({ err: error }, 'token revocation queue error'));
  return {
    ready: new Promise<void>((resolve) => consumer.once('ready', () => resolve())),
    close: () => consumer.close(),
  };
}

/** Revokes what the event says; anything else is logged and dropped (this queue has no dead letters). */
export function applyRevocation(body: unknown, revocations: TokenRevocations, log: Logger): void {
  const parsed = parseEnvelope(body);
  if ('error' in parsed) {
    log.warn({ error: parsed.error }, 'token revocation message ignored');
    return;
  }
  const { event_type: eventType, data } = parsed.event;
  const violation = (REVOKING_EVENTS as readonly string[]).includes(eventType)
    ? contractViolation(eventType, data, 'consume')
    : `unexpected event type ${eventType}`;
  if (violation) {
    log.warn({ error: violation }, 'token revocation message ignored');
    return;
  }
  const { user_id: userId, token_generation: validFrom } = data as { user_id: number; token_generation: number };
  if (revocations.revoke(userId, validFrom)) log.info({ userId, validFrom }, 'tokens revoked');
}
