import type { Queryable } from '../../db/database.ts';
import type { OutgoingMessage } from '../transport.ts';
import type { Batch, PublishPath } from './publish-path.ts';
import type { OutboxRow, RelaySql } from './relay-sql.ts';

export interface SessionSettings {
  sql: RelaySql;
  path: PublishPath;
  appId: string;
  batchSize: number;
  maxInFlight: number;
  /** Called for each batch once it left the outbox (the log line and the counter). */
  announce(rows: OutboxRow[]): void;
}

/**
 * The state of one hold of the lock: where the relay has read to, what it has sent and not
 * yet settled, and the first failure. Statements run in the order they are sent on the
 * relay's connection, so when a read runs, the session knows exactly how many of the rows
 * it sent are still in the outbox.
 */
export class PublishingSession {
  /** The last id read: the next read starts after it. */
  private cursor = 0;
  /** Sent rows the relay still counts as in the outbox (their DELETE not sent yet). */
  private sentNotDeleted = 0;
  /** Sent rows whose batch is not settled. */
  private inFlight = 0;
  /** The first batch that failed: later ones are not deleted, and nothing more is sent. */
  failure: Error | undefined;
  /** Each batch's settling (publish confirmed, rows deleted), in order. */
  private readonly batches: Array<Promise<void>> = [];
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly connection: Queryable,
    private readonly settings: SessionSettings,
  ) {}

  /** The next rows after the cursor; `late` when a row turned up behind it. */
  async readNext(): Promise<{ rows: OutboxRow[]; late: boolean }> {
    // What the read will count of ours: the DELETEs sent before it (a batch confirmed
    // while the read runs sends its DELETE after the read).
    const ours = this.sentNotDeleted;
    const read = await this.connection.query<OutboxRow>(this.settings.sql.read, [this.settings.batchSize, this.cursor]);
    return { rows: read.rows.filter((row) => row.id !== null), late: read.rows[0].behind > ours };
  }

  /**
   * A late row: it goes out before anything after it. Once everything in flight is
   * settled, the next read starts again from the oldest row.
   */
  async rewind(): Promise<void> {
    await this.settled();
    this.cursor = 0;
  }

  /** Whether another replica's relay waits for the lock this session holds. */
  async anotherRelayWaits(): Promise<boolean> {
    return (await this.connection.query<{ waiting: boolean }>(this.settings.sql.waiting)).rows[0].waiting;
  }

  /**
   * Sends the rows on their way; they are deleted once they and every batch before them are
   * published. Resolves when the relay may read on.
   */
  send(rows: OutboxRow[]): Promise<void> {
    const { path, appId } = this.settings;
    const messages = rows.map((row) => toMessage(row, appId));
    const batch: Batch = { messages, ids: rows.map((row) => row.id), started: path.start(messages) };
    // Nothing more is sent after a failed batch: a later one must not overtake it.
    batch.started?.catch((error: unknown) => (this.failure ??= asError(error)));
    this.sentNotDeleted += rows.length;
    this.inFlight += rows.length;
    this.cursor = rows.at(-1)!.id;
    const settled = this.last.then(() => this.settle(rows, batch));
    this.batches.push(settled);
    this.last = settled;
    return path.readsAhead ? Promise.resolve() : settled;
  }

  private async settle(rows: OutboxRow[], batch: Batch): Promise<void> {
    try {
      if (this.failure) return; // a batch before failed: this one is published again, after it
      await this.settings.path.finish(batch, () => (this.sentNotDeleted -= rows.length));
      this.settings.announce(rows);
    } catch (error) {
      this.failure ??= asError(error);
    } finally {
      this.inFlight -= rows.length;
      void this.batches.shift(); // this batch's own promise: settled now
    }
  }

  /** As many rows in flight as allowed: the caller waits for the oldest batch. */
  get full(): boolean {
    return this.inFlight >= this.settings.maxInFlight;
  }

  get idle(): boolean {
    return this.inFlight === 0;
  }

  /** The oldest batch in flight settled. */
  oldestSettled(): Promise<void> {
    return this.batches[0] ?? Promise.resolve();
  }

  /** Every batch sent so far settled. */
  settled(): Promise<void> {
    return this.last;
  }
}

function toMessage(row: OutboxRow, appId: string): OutgoingMessage {
  return {
    routingKey: row.event_type,
    messageId: row.event_id,
    type: row.event_type,
    appId,
    timestamp: row.created_at,
    body: Buffer.from(row.body, 'utf8'),
    headers: row.headers,
  };
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
