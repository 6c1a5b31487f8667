import type { Database } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/logger.ts';
import { createWakeableLoop } from '../../platform/wakeable-loop.ts';
import { matchesFilter, type EventFilter, type RecordedEvent } from './event-filter.ts';
import { eventStore } from './event-store.ts';

const BATCH = 500;
/** Another replica's recordings are seen this soon; this process's own at once (wake). */
const POLL_INTERVAL_MS = 250;

interface StreamClient {
  filter: EventFilter;
  /** The last seq sent: a reconnecting client's Last-Event-ID. */
  cursor: number;
  live: boolean;
  send(event: RecordedEvent): void;
}

export interface EventStream {
  /** Sends every recorded event after `lastSeq` that matches, then each new one, until the returned stop. */
  follow(filter: EventFilter, lastSeq: number | undefined, send: (event: RecordedEvent) => void): Promise<() => void>;
  /** Something was recorded here: look now rather than at the next poll. */
  wake(): void;
  close(): void;
}

/** Where the tail has read to: undefined until first asked (the latest seq then). */
interface TailPosition {
  seq: number | undefined;
}

/**
 * One tail over event_log.events for the whole process, however many clients follow it:
 * each new row is read once and pushed to every client whose filter matches. A client
 * that resumes first catches up from the table, then joins the tail without a gap.
 */
export function createEventStream(deps: { db: Database; log: Logger }): EventStream {
  const { db } = deps;
  const clients = new Set<StreamClient>();
  const position: TailPosition = { seq: undefined };
  let timer: NodeJS.Timeout | undefined;

  // A failed pass is retried by the next poll or wake; the loop is never closed (a client
  // may follow again after close()): with no clients it is not woken.
  const tail = createWakeableLoop({
    run: () => tailBatch(db, clients, position),
    onError: (error) => deps.log.warn({ err: error }, 'event stream tail failed; retrying'),
  });
  const wake = () => {
    if (clients.size > 0) tail.wake();
  };

  return {
    async follow(filter, lastSeq, send) {
      const client: StreamClient = {
        filter,
        cursor: lastSeq ?? (await currentPosition(db, position)),
        live: false,
        send,
      };
      clients.add(client);
      timer ??= setInterval(wake, POLL_INTERVAL_MS).unref();
      await catchUp(db, client, position);
      return () => {
        clients.delete(client);
        if (clients.size === 0) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
    wake,
    close() {
      clients.clear();
      clearInterval(timer);
      timer = undefined;
    },
  };
}

async function currentPosition(db: Database, position: TailPosition): Promise<number> {
  return (position.seq ??= await eventStore.latestSeq(db));
}

/** Pushes the rows after the position to the live clients; true when a full batch came (more may follow). */
async function tailBatch(db: Database, clients: Set<StreamClient>, position: TailPosition): Promise<boolean> {
  const rows = await eventStore.listAfter(db, { projectEventsOnly: false }, await currentPosition(db, position), BATCH);
  for (const row of rows) {
    position.seq = row.seq;
    for (const client of clients) {
      if (client.live && row.seq > client.cursor && matchesFilter(row, client.filter)) {
        client.cursor = row.seq;
        client.send(row);
      }
    }
  }
  return rows.length === BATCH;
}

/** Sends a joining client what it missed, up to the tail's position, then makes it live. */
async function catchUp(db: Database, client: StreamClient, position: TailPosition): Promise<void> {
  for (;;) {
    const until = await currentPosition(db, position);
    const rows = await eventStore.listAfter(db, client.filter, client.cursor, BATCH, until);
    for (const row of rows) {
      client.cursor = row.seq;
      client.send(row);
    }
    // Checked synchronously after the read: the tail cannot slip a row in between.
    if (rows.length < BATCH && position.seq === until) {
      client.cursor = Math.max(client.cursor, until);
      client.live = true;
      return;
    }
  }
}
