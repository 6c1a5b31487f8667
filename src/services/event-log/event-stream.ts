import type { Database } from '../../platform/db/database.ts';
import type { Logger } from '../../platform/logger.ts';
import { createWakeableLoop } from '../../platform/wakeable-loop.ts';
import { tooManyStreams } from './errors.ts';
import { isVisibleTo, matchesFilter, toEnvelope, type EventFilter, type RecordedEvent } from './event-filter.ts';
import { eventStore } from './event-store.ts';
import { eventLogMembers } from './members.ts';

const TAIL_BATCH = 500;
/** Another replica's recordings are seen this soon; this process's own at once (wake). */
const POLL_INTERVAL_MS = 250;
const HEARTBEAT_MS = 15_000;

/** The limits of docs/security.md, from EVENT_STREAMS_PER_USER and the settings next to it. */
export interface StreamLimits {
  perUser: number;
  perProcess: number;
  /** A live client whose unsent data passes this when an event is due is dropped: it does not read. */
  maxUnsentBytes: number;
  /** Rows read and sent at a time when a client catches up from Last-Event-ID. */
  catchUpPage: number;
}

/** Where a stream's frames go: the HTTP response (only what the stream needs of it). */
export interface StreamOutput {
  write(chunk: string): boolean;
  /** Bytes written but not yet handed to the kernel: what a client that does not read piles up. */
  readonly writableLength: number;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  end(): unknown;
  destroy(): unknown;
  /** The connection is gone: its 'close' may have fired before the stream was followed. */
  readonly socket?: { readonly destroyed: boolean } | null;
}

export interface StreamRequest {
  userId: number;
  filter: EventFilter;
  /** Resume after this seq; undefined: from now. */
  lastSeq: number | undefined;
  /** When the client's token expires (ms since the epoch): the stream ends then. */
  endsAt: number | undefined;
}

/** A place among the open streams, taken before the response starts so that a refusal is a plain 429. */
export interface StreamSlot {
  /** Sends what the client missed, then every new event it may see, until the stream ends. */
  follow(request: StreamRequest, out: StreamOutput): Promise<void>;
  /** Ends the stream (or gives the place back if it never started). */
  end(reason: string): void;
}

export interface EventStream {
  /** Takes a place for a user's stream; throws tooManyStreams past a limit. */
  open(userId: number): StreamSlot;
  /** Ends every open stream of a user at once (their tokens were revoked); returns how many. */
  closeStreamsOfUser(userId: number): number;
  /** How many streams are open (all users). */
  openCount(): number;
  /** Something was recorded here: look now rather than at the next poll. */
  wake(): void;
  /** Ends every stream (the server is closing). */
  close(): void;
}

interface StreamClient {
  userId: number;
  filter: EventFilter;
  /** The last seq sent: a reconnecting client's Last-Event-ID. */
  cursor: number;
  live: boolean;
  out: StreamOutput;
  end(reason: string): void;
}

/** Where the tail has read to: undefined until first asked (the latest seq then). */
interface TailPosition {
  seq: number | undefined;
}

/** What every stream of the process shares. */
interface StreamState {
  db: Database;
  limits: StreamLimits;
  clients: Set<StreamClient>;
  slotsByUser: Map<number, Set<StreamSlot>>;
  position: TailPosition;
  /** Polls while any client follows; started by the first, stopped with the last. */
  poll: { start(): void; stopIfIdle(): void };
}

/**
 * One tail over event_log.events for the whole process, however many clients follow it:
 * each new row is read once and pushed to every client that may see it and whose filter
 * matches. A client that resumes first catches up from the table, then joins the tail
 * without a gap. Open streams are counted per user and per process.
 */
export function createEventStream(deps: { db: Database; log: Logger; limits: StreamLimits }): EventStream {
  const clients = new Set<StreamClient>();
  const position: TailPosition = { seq: undefined };
  // A failed pass is retried by the next poll or wake; the loop is never closed (a client
  // may follow again after close()): with no clients it is not woken.
  const tail = createWakeableLoop({
    run: () => tailBatch(deps.db, clients, position, deps.limits.maxUnsentBytes),
    onError: (error) => deps.log.warn({ err: error }, 'event stream tail failed; retrying'),
  });
  const wake = () => {
    if (clients.size > 0) tail.wake();
  };
  let timer: NodeJS.Timeout | undefined;
  const state: StreamState = {
    db: deps.db,
    limits: deps.limits,
    clients,
    slotsByUser: new Map(),
    position,
    poll: {
      start: () => (timer ??= setInterval(wake, POLL_INTERVAL_MS).unref()),
      stopIfIdle() {
        if (clients.size > 0) return;
        clearInterval(timer);
        timer = undefined;
      },
    },
  };
  const endAll = (slots: Iterable<StreamSlot>, reason: string) => {
    const ending = [...slots];
    for (const slot of ending) slot.end(reason);
    return ending.length;
  };
  return {
    open: (userId) => openSlot(state, userId),
    closeStreamsOfUser: (userId) => endAll(state.slotsByUser.get(userId) ?? [], 'signed out'),
    openCount: () => countSlots(state),
    wake,
    close() {
      endAll(
        [...state.slotsByUser.values()].flatMap((slots) => [...slots]),
        'server closing',
      );
    },
  };
}

const countSlots = (state: StreamState) => [...state.slotsByUser.values()].reduce((sum, slots) => sum + slots.size, 0);

/** A place for a user's stream, or tooManyStreams past the per-user or per-process limit. */
function openSlot(state: StreamState, userId: number): StreamSlot {
  const { db, limits, clients, position } = state;
  const ofUser = state.slotsByUser.get(userId) ?? new Set<StreamSlot>();
  if (ofUser.size >= limits.perUser) throw tooManyStreams(`You have ${ofUser.size} event streams open already`);
  if (countSlots(state) >= limits.perProcess)
    throw tooManyStreams('The server has as many event streams open as it serves');
  let endReason: string | undefined;
  let client: StreamClient | undefined;
  let timers: NodeJS.Timeout[] = [];
  const end = (reason: string) => {
    if (endReason !== undefined) return;
    endReason = reason;
    ofUser.delete(slot);
    if (ofUser.size === 0) state.slotsByUser.delete(userId);
    for (const t of timers) clearTimeout(t);
    if (!client) return;
    finish(client, reason);
    clients.delete(client);
    state.poll.stopIfIdle();
  };
  const slot: StreamSlot = {
    async follow(request, out) {
      out.once('close', () => end('client closed'));
      // A client that hung up while the request was checked (token, Last-Event-ID) had its
      // 'close' before the listener above: its slot must not be held until the token expires.
      if (out.socket === null || out.socket?.destroyed) return end('client closed');
      const cursor = request.lastSeq ?? (await currentPosition(db, position));
      client = { userId, filter: request.filter, cursor, live: false, out, end };
      // Ended while the position was read (revoked, server closing): end the response too.
      if (endReason !== undefined) return finish(client, endReason);
      timers = streamTimers(out, request.endsAt, end);
      clients.add(client);
      state.poll.start();
      // Sent once the client follows: from here on no event is missed.
      out.write(': connected\n\n');
      await catchUp(db, client, position, limits.catchUpPage, () => endReason !== undefined);
    },
    end,
  };
  ofUser.add(slot);
  state.slotsByUser.set(userId, ofUser);
  return slot;
}

/** The heartbeat, and the end at the token's expiry (a timer holds at most 24.8 days; tokens live at most 7). */
function streamTimers(out: StreamOutput, endsAt: number | undefined, end: (reason: string) => void) {
  const heartbeat = setInterval(() => out.write(': keep-alive\n\n'), HEARTBEAT_MS);
  if (endsAt === undefined) return [heartbeat];
  const expiry = setTimeout(() => end('token expired'), Math.max(0, endsAt - Date.now()));
  return [heartbeat, expiry];
}

/**
 * Ends the response. A client that still reads is told why in a comment line; one that
 * does not read is cut off, since what is queued for it would never go.
 */
function finish(client: StreamClient, reason: string): void {
  if (reason === 'client closed') return;
  if (reason === 'not reading') {
    client.out.destroy();
    return;
  }
  client.out.write(`: stream ended: ${reason}\n\n`);
  client.out.end();
}

/** One SSE frame: the seq as its id, for Last-Event-ID. */
function frameOf(event: RecordedEvent): string {
  return `id: ${event.seq}\nevent: ${event.event_type}\ndata: ${JSON.stringify(toEnvelope(event))}\n\n`;
}

async function currentPosition(db: Database, position: TailPosition): Promise<number> {
  return (position.seq ??= await eventStore.latestSeq(db));
}

/** Pushes the rows after the position to the live clients; true when a full batch came (more may follow). */
async function tailBatch(
  db: Database,
  clients: Set<StreamClient>,
  position: TailPosition,
  maxUnsentBytes: number,
): Promise<boolean> {
  const rows = await eventStore.listAfter(db, {}, await currentPosition(db, position), TAIL_BATCH);
  const memberships = await membershipsFor(db, clients, rows);
  for (const row of rows) {
    position.seq = row.seq;
    let frame: string | undefined;
    for (const client of clients) {
      if (!client.live || row.seq <= client.cursor) continue;
      client.cursor = row.seq;
      const isMember = (projectId: number) => memberships.get(client.userId)?.has(projectId) ?? false;
      if (!matchesFilter(row, client.filter) || !isVisibleTo(row, client.filter.viewer, isMember)) continue;
      // Checked before the write: one event larger than the bound must not drop a client that reads.
      if (client.out.writableLength > maxUnsentBytes) client.end('not reading');
      else client.out.write((frame ??= frameOf(row)));
    }
  }
  return rows.length === TAIL_BATCH;
}

/** Memberships of the non-admin clients in the batch's projects, read after the rows were recorded. */
async function membershipsFor(db: Database, clients: Set<StreamClient>, rows: RecordedEvent[]) {
  const viewers = new Set<number>();
  for (const client of clients) if (client.filter.viewer !== undefined) viewers.add(client.filter.viewer);
  const projects = new Set<number>();
  for (const row of rows) if (row.project_id !== null) projects.add(row.project_id);
  return eventLogMembers.membershipsAmong(db, [...viewers], [...projects]);
}

/**
 * Sends a joining client what it missed, a page at a time and only as fast as it reads,
 * up to the tail's position, then makes it live.
 */
async function catchUp(
  db: Database,
  client: StreamClient,
  position: TailPosition,
  page: number,
  ended: () => boolean,
): Promise<void> {
  for (;;) {
    const until = await currentPosition(db, position);
    const rows = await eventStore.listAfter(db, client.filter, client.cursor, page, until);
    for (const row of rows) {
      if (ended()) return;
      client.cursor = row.seq;
      if (!client.out.write(frameOf(row))) await drained(client.out);
    }
    if (ended()) return;
    // Checked synchronously after the read: the tail cannot slip a row in between.
    if (rows.length < page && position.seq === until) {
      client.cursor = Math.max(client.cursor, until);
      client.live = true;
      return;
    }
  }
}

/** Until the client took what was written (or went away): a catch-up holds one page at most. */
function drained(out: StreamOutput): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
  });
}
