import type { Database, Queryable } from '../../db/database.ts';
import { withTimeout } from '../../timeout.ts';
import type { EventTransport, OutgoingMessage } from '../transport.ts';
import type { RelaySql } from './relay-sql.ts';

/** One batch on its way: its messages, their outbox ids, and its publish when already started. */
export interface Batch {
  messages: OutgoingMessage[];
  ids: number[];
  started: Promise<void> | undefined;
}

/**
 * How a batch goes from the outbox to the transport: the relay's one publish path, chosen
 * once by what the transport can do (a transactional hand-over, or a broker's confirms).
 */
export interface PublishPath {
  /** Whether the relay reads and sends on while the batch is being finished. */
  readonly readsAhead: boolean;
  /** Called as the batch is sent: starts publishing at once where the transport confirms later. */
  start(messages: OutgoingMessage[]): Promise<void> | undefined;
  /**
   * Called once every batch before this one succeeded: the batch is made safe with the
   * transport and deleted from the outbox. `leftOutbox` is called at the moment the relay
   * stops counting the batch's rows as its own in the outbox (see PublishingSession.readNext).
   */
  finish(batch: Batch, leftOutbox: () => void): Promise<void>;
}

/**
 * A broker with publisher confirms: published at once, pipelined; deleted once confirmed,
 * on the relay's connection, so the DELETE runs in order with its reads.
 */
export function confirmedPublishPath(
  transport: EventTransport,
  connection: Queryable,
  sql: RelaySql,
  confirmTimeoutMs: number,
): PublishPath {
  return {
    readsAhead: true,
    start: (messages) => withTimeout(transport.publish(messages), confirmTimeoutMs, "the broker's confirm"),
    async finish(batch, leftOutbox) {
      await batch.started;
      leftOutbox();
      await connection.query(sql.delete, [batch.ids]);
    },
  };
}

/**
 * A transport that takes a batch in a database transaction (the in-process transport):
 * stored in its queues and deleted from the outbox in one transaction, so the hand-over
 * neither loses nor repeats. One batch at a time, after the one before succeeded; the relay
 * reads on once it is done, so its count of its own rows stays exact on any connection.
 */
export function handOverPublishPath(transport: HandingOver, db: Database, sql: RelaySql): PublishPath {
  return {
    readsAhead: false,
    start: () => undefined,
    async finish(batch, leftOutbox) {
      await db.transaction(async (tx) => {
        await transport.handOver(tx, batch.messages);
        await tx.query(sql.delete, [batch.ids]);
      });
      leftOutbox();
    },
  };
}

/** A transport that can take a batch in the relay's transaction. */
type HandingOver = EventTransport & Required<Pick<EventTransport, 'handOver'>>;

const canHandOver = (transport: EventTransport): transport is HandingOver => transport.handOver !== undefined;

/**
 * The transport's hand-over when it has one, else publishing with confirms. Its methods are
 * looked up at each call (a test may replace one).
 */
export function publishPathFor(
  transport: EventTransport,
  db: Database,
  connection: Queryable,
  sql: RelaySql,
  confirmTimeoutMs: number,
): PublishPath {
  return canHandOver(transport)
    ? handOverPublishPath(transport, db, sql)
    : confirmedPublishPath(transport, connection, sql, confirmTimeoutMs);
}
