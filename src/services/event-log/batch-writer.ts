interface Waiting<Item> {
  item: Item;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Collects items added about the same time and writes them in one go: a batch goes when it
 * is full or `maxWaitMs` after its first item. Each `add` resolves once its batch is written
 * (so a message is acknowledged only after its report is stored) and rejects if it failed.
 */
export function createBatchWriter<Item>(options: { write(batch: Item[]): Promise<void>; maxBatch: number; maxWaitMs: number }) {
  let waiting: Array<Waiting<Item>> = [];
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    const batch = waiting;
    waiting = [];
    options.write(batch.map((entry) => entry.item)).then(
      () => batch.forEach((entry) => entry.resolve()),
      (error) => batch.forEach((entry) => entry.reject(error)),
    );
  };

  return {
    add(item: Item): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (waiting.length >= options.maxBatch) flush();
        else timer ??= setTimeout(flush, options.maxWaitMs);
      });
    },
  };
}
