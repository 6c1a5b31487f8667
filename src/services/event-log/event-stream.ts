import type { Database } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/logger.ts';
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

/**
 * One tail over event_log.events for the whole process, however many clients follow it:
 * each new row is read once and pushed to every client whose filter matches. A client
 * that resumes first catches up from the table, then joins the tail without a gap.
 */
export function createEventStream(deps: { db: Database; log: Logger }): EventStream {
  const { db } = deps;
  const clients = new Set<StreamClient>();
  let position: number | undefined;
  let running: Promise<void> | undefined;
  let wokenWhileRunning = false;
  let timer: NodeJS.Timeout | undefined;

  const currentPosition = async () => (position ??= await eventStore.latestSeq(db));

  const tail = async () => {
    do {
      wokenWhileRunning = false;
      let rows: RecordedEvent[];
      do {
        rows = await eventStore.listAfter(db, { projectEventsOnly: false }, await currentPosition(), BATCH);
        for (const row of rows) {
          position = row.seq;
          for (const client of clients) {
            if (client.live && row.seq > client.cursor && matchesFilter(row, client.filter)) {
              client.cursor = row.seq;
              client.send(row);
            }
          }
        }
      } while (rows.length === BATCH);
    } while (wokenWhileRunning);
  };

  const wake = () => {
    if (clients.size === 0) return;
    if (running) {
      wokenWhileRunning = true;
      return;
    }
    running = tail()
      .catch((error) => deps.log.warn({ err: error }, 'event stream tail failed; retrying'))
      .finally(() => {
        running = undefined;
      });
  };

  const catchUp = async (client: StreamClient) => {
    for (;;) {
      const until = await currentPosition();
      const rows = await eventStore.listAfter(db, client.filter, client.cursor, BATCH, until);
      for (const row of rows) {
        client.cursor = row.seq;
        client.send(row);
      }
      // Checked synchronously after the read: the tail cannot slip a row in between.
      if (rows.length < BATCH && position === until) {
        client.cursor = Math.max(client.cursor, until);
        client.live = true;
        return;
      }
    }
  };

  return {
    async follow(filter, lastSeq, send) {
      const client: StreamClient = { filter, cursor: lastSeq ?? (await currentPosition()), live: false, send };
      clients.add(client);
      timer ??= setInterval(wake, POLL_INTERVAL_MS).unref();
      await catchUp(client);
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
