export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Reads a Prometheus text exposition into samples. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

/** The /metrics of a running process, with a lookup summing the series that match. */
export async function scrapeMetrics(baseUrl: string) {
  const response = await fetch(`${baseUrl}/metrics`);
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  const samples = parsePrometheusText(await response.text());
  return {
    samples,
    /** The sum of every series of `name` whose labels include `labels` (0 when none). */
    value(name: string, labels: Record<string, string> = {}): number {
      return samples
        .filter(
          (sample) =>
            sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
        )
        .reduce((sum, sample) => sum + sample.value, 0);
    },
    has(name: string, labels: Record<string, string> = {}): boolean {
      return samples.some(
        (sample) =>
          sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
      );
    },
  };
}
