interface Waiting<Item, Result> {
  item: Item;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

/**
 * Collects items added about the same time and writes them in one go: a batch goes when it
 * is full or `maxWaitMs` after its first item. Each `add` resolves with its item's result
 * once its batch is written (a message is acknowledged only after its work is stored) and
 * rejects if the batch failed. Batches are written one after the other, in order.
 */
export function createBatchWriter<Item, Result = void>(options: {
  /** Returns one result per item, in order. */
  write(batch: Item[]): Promise<Result[] | void>;
  maxBatch: number;
  maxWaitMs: number;
}) {
  let waiting: Array<Waiting<Item, Result>> = [];
  let timer: NodeJS.Timeout | undefined;
  let previous: Promise<unknown> = Promise.resolve();

  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    const batch = waiting;
    waiting = [];
    const written = previous.then(() => options.write(batch.map((entry) => entry.item)));
    previous = written.catch(() => undefined);
    written.then(
      (results) => batch.forEach((entry, index) => entry.resolve((results ?? [])[index])),
      (error) => batch.forEach((entry) => entry.reject(error)),
    );
  };

  return {
    add(item: Item): Promise<Result> {
      return new Promise<Result>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (waiting.length >= options.maxBatch) flush();
        else timer ??= setTimeout(flush, options.maxWaitMs);
      });
    },
  };
}
