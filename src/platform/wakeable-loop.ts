/**
 * What a run sees of its loop: whether it was woken while it ran, a way to wait for the next
 * wake, and whether the loop was closed (a run stops early then).
 */
export interface LoopSignal {
  /** wake() was called since this run began (or since clearWoken()). */
  readonly woken: boolean;
  clearWoken(): void;
  /** Resolves at the next wake() or at close(). */
  nextWake(): Promise<void>;
  readonly closed: boolean;
}

export interface WakeableLoopOptions {
  /**
   * One pass over the work. Resolving true asks for another pass at once (work is left);
   * a pass also follows when the loop was woken while this one ran.
   */
  run(signal: LoopSignal): Promise<boolean | void>;
  /** After a failed run, wake again this much later (sooner if woken). None: wait for a wake. */
  retryDelayMs?: number;
  /** A run failed (the loop wakes again after retryDelayMs, if given). */
  onError?(error: unknown): void;
  /** A run succeeded after one or more failed. */
  onRecovered?(): void;
}

export interface WakeableLoop {
  /** Runs now, or, if a run is under way, once more after it. A function of its own (a listener). */
  readonly wake: () => void;
  /** No more runs; resolves once the run under way (if any) is over. */
  close(): Promise<void>;
  readonly closed: boolean;
}

/**
 * Run once, run again if woken while running, retry after a failure: the loop behind the
 * outbox relay, the in-process queue workers and the event log's stream. At most one run
 * at a time; wakes while it runs fold into one more pass.
 */
export function createWakeableLoop(options: WakeableLoopOptions): WakeableLoop {
  return new Loop(options);
}

class Loop implements WakeableLoop, LoopSignal {
  woken = false;
  closed = false;
  private running: Promise<void> | undefined;
  private failing = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];

  constructor(private readonly options: WakeableLoopOptions) {}

  readonly wake = (): void => {
    if (this.closed) return;
    if (this.running) {
      this.woken = true;
      this.releaseWaiters();
      return;
    }
    clearTimeout(this.retryTimer);
    this.running = this.passes()
      .then(
        () => this.succeeded(),
        (error: unknown) => this.failed(error),
      )
      .finally(() => {
        this.running = undefined;
      });
  };

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.releaseWaiters();
    await this.running;
  }

  clearWoken(): void {
    this.woken = false;
  }

  nextWake(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Runs while a run asks for more or a wake came meanwhile. */
  private async passes(): Promise<void> {
    let more: boolean | void;
    do {
      this.woken = false;
      more = await this.options.run(this);
    } while ((more === true || this.woken) && !this.closed);
  }

  private succeeded(): void {
    if (this.failing) this.options.onRecovered?.();
    this.failing = false;
  }

  private failed(error: unknown): void {
    this.failing = true;
    this.options.onError?.(error);
    const { retryDelayMs } = this.options;
    if (!this.closed && retryDelayMs !== undefined) this.retryTimer = setTimeout(this.wake, retryDelayMs).unref();
  }

  private releaseWaiters(): void {
    const released = this.waiters;
    this.waiters = [];
    released.forEach((resolve) => resolve());
  }
}
