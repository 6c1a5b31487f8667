export interface SseMessage {
  id: string;
  event: string;
  data: any;
  receivedAt: number;
}

export interface SseConnection {
  messages: SseMessage[];
  waitFor(count: number, timeoutMs?: number): Promise<SseMessage[]>;
  /** Resolves when the server ends the stream (or it is closed here). */
  ended: Promise<void>;
  close(): void;
}

/** A Server-Sent Events client over fetch, as a browser's EventSource would read the stream. */
export async function openEventStream(url: string, headers: Record<string, string>): Promise<SseConnection> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  if (response.status !== 200) throw new Error(`stream answered ${response.status}: ${await response.text()}`);
  const messages: SseMessage[] = [];
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const ended = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(
            block
              .split('\n')
              .filter((line) => line && !line.startsWith(':'))
              .map((line) => {
                const colon = line.indexOf(':');
                return [line.slice(0, colon), line.slice(colon + 1).trimStart()];
              }),
          );
          if (fields.data)
            messages.push({
              id: fields.id,
              event: fields.event,
              data: JSON.parse(fields.data),
              receivedAt: Date.now(),
            });
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    messages,
    ended,
    async waitFor(count, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} stream messages, got ${messages.length}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return messages.slice(0, count);
    },
    close: () => controller.abort(),
  };
}
