import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { eventually, startTestSystem, type TestSystem } from '../support/test-system.ts';

/**
 * The operations files (ops/prometheus/alerts.yml, ops/prometheus/prometheus.yml,
 * ops/grafana/defect-control-dashboard.json, docs/monitoring.md) against what a running
 * system really serves on /metrics: a renamed metric or label must break this test, not a
 * dashboard panel or an alert that then silently never fires.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ALERTS_FILE = path.join(ROOT, 'ops/prometheus/alerts.yml');
const PROMETHEUS_FILE = path.join(ROOT, 'ops/prometheus/prometheus.yml');
const DASHBOARD_FILE = path.join(ROOT, 'ops/grafana/defect-control-dashboard.json');
const MONITORING_DOC = path.join(ROOT, 'docs/monitoring.md');

const REQUIRED_ALERTS = [
  'OutboxBacklogGrowing',
  'OutboxEventsOld',
  'EventPublishErrors',
  'DeadLettersPresent',
  'ConsumerRetriesHigh',
  'EventDeliveryLatencyHigh',
  'HttpErrorsHigh',
  'ServiceDown',
];
/** Series Prometheus makes itself, not the processes. */
const PROMETHEUS_OWN_METRICS = new Set(['up']);
/** Labels Prometheus attaches to every scraped series (the target's). */
const TARGET_LABELS = new Set(['job', 'instance']);
const CONSUMERS = ['defects.project-directory', 'notifications.email', 'event-log.recorder'];

// ---------------------------------------------------------------------------------------
// The exposition format

interface Exposition {
  /** `# TYPE` families: name → counter | gauge | histogram | summary | untyped. */
  families: Map<string, string>;
  /** Sample names (`x_bucket`, `x_total`, …) → every label name seen on them. */
  labels: Map<string, Set<string>>;
}

function parseExposition(text: string): Exposition {
  const families = new Map<string, string>();
  const labels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE ([a-zA-Z_:][\w:]*) (\w+)/.exec(line);
    if (type) families.set(type[1], type[2]);
    if (!line || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+\S+/.exec(line);
    if (!sample) continue;
    const names = labels.get(sample[1]) ?? new Set<string>();
    for (const pair of (sample[2] ?? '').matchAll(/([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"/g)) names.add(pair[1]);
    labels.set(sample[1], names);
  }
  return { families, labels };
}

const HISTOGRAM_SUFFIXES = /_(bucket|sum|count)$/;

function isKnownMetric(exposition: Exposition, name: string): boolean {
  if (exposition.labels.has(name) || exposition.families.has(name)) return true;
  const base = name.replace(HISTOGRAM_SUFFIXES, '');
  return base !== name && ['histogram', 'summary'].includes(exposition.families.get(base) ?? '');
}

// ---------------------------------------------------------------------------------------
// What a PromQL expression uses: metric names, and label names per metric

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'atan2',
]);

/** Grafana's variables, as Prometheus would see them after Grafana replaced them. */
function withGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');
}

/** The index of the bracket that closes the one at `open` (same kind), or -1. */
function closingBracket(text: string, open: number): number {
  const pairs: Record<string, string> = { '(': ')', '[': ']', '{': '}' };
  const close = pairs[text[open]];
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === text[open]) depth += 1;
    else if (text[i] === close && --depth === 0) return i;
  }
  return -1;
}

function openingBracket(text: string, close: number): number {
  let depth = 0;
  for (let i = close; i >= 0; i -= 1) {
    if (text[i] === ')') depth += 1;
    else if (text[i] === '(' && --depth === 0) return i;
  }
  return -1;
}

/** Same length, strings blanked (quotes kept): label names stay where they were. */
function blankStrings(expr: string): { text: string; strings: string[] } {
  const strings: string[] = [];
  const text = expr.replace(/"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|`([^`]*)`/g, (whole, d, s, b) => {
    strings.push(d ?? s ?? b);
    return `"${' '.repeat(whole.length - 2)}"`;
  });
  return { text, strings };
}

interface ExpressionUse {
  metrics: Set<string>;
  /** Label names used on a metric: in its selector, or in a by/without/on/ignoring over it. */
  labelsOn: Array<{ metric: string; label: string; where: string }>;
  problems: string[];
}

/** Metric names in (a part of) an expression with strings blanked. */
function metricNamesIn(blanked: string): string[] {
  const names: string[] = [];
  const simplified = blanked
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/"\s*"/g, '""');
  for (const match of simplified.matchAll(/(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:])/g)) {
    const rest = simplified.slice(match.index + match[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function or an aggregation
    if (KEYWORDS.has(match[1].toLowerCase())) continue;
    names.push(match[1]);
  }
  return names;
}

/** The top-level arguments of the call whose `(` is at `open`, with their positions. */
function callArguments(text: string, open: number): Array<{ start: number; text: string }> {
  const close = closingBracket(text, open);
  const args: Array<{ start: number; text: string }> = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open + 1; i < close; i += 1) {
    if ('([{'.includes(text[i])) depth += 1;
    else if (')]}'.includes(text[i])) depth -= 1;
    else if (text[i] === ',' && depth === 0) {
      args.push({ start, text: text.slice(start, i) });
      start = i + 1;
    }
  }
  args.push({ start, text: text.slice(start, close) });
  return args;
}

/** The labels label_replace / label_join make (their second argument), by the call's position. */
function madeLabels(
  blanked: string,
  stringAt: (position: number) => string | undefined,
): Array<{ position: number; label: string }> {
  const made: Array<{ position: number; label: string }> = [];
  for (const match of blanked.matchAll(/\blabel_(replace|join)\s*\(/g)) {
    const destination = callArguments(blanked, match.index + match[0].length - 1)[1];
    const label = destination && stringAt(destination.start + destination.text.indexOf('"'));
    if (label) made.push({ position: match.index, label });
  }
  return made;
}

function analyzeExpression(rawExpr: string): ExpressionUse {
  const expr = withGrafanaVariables(rawExpr);
  const { text: blanked, strings } = blankStrings(expr);
  const stringStarts = [...blanked.matchAll(/"\s*"/g)].map((match) => match.index);
  const made = madeLabels(blanked, (position) => strings[stringStarts.indexOf(position)]);
  const use: ExpressionUse = { metrics: new Set(), labelsOn: [], problems: [] };

  for (const name of metricNamesIn(blanked)) use.metrics.add(name);

  // Selectors: metric{label="…", …}
  for (const match of blanked.matchAll(/([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}/g)) {
    const metric = match[1];
    if (!metric) {
      use.problems.push(`a selector without a metric name: ${match[0]}`);
      continue;
    }
    for (const matcher of match[2].matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)/g)) {
      use.labelsOn.push({ metric, label: matcher[1], where: `${metric}{…}` });
    }
  }

  // Grouping: by/without (…) over the aggregated expression; on/ignoring (…) over both sides.
  for (const match of blanked.matchAll(/\b(by|without|on|ignoring)\s*\(([^)]*)\)/g)) {
    const labels = match[2]
      .split(',')
      .map((label) => label.trim())
      .filter(Boolean);
    let scope = blanked;
    let scopeStart = 0;
    let scopeEnd = blanked.length;
    if (match[1] === 'by' || match[1] === 'without') {
      const after = match.index + match[0].length;
      const next = blanked.slice(after).search(/\S/);
      const before = blanked.slice(0, match.index).trimEnd();
      if (next >= 0 && blanked[after + next] === '(') {
        const open = after + next;
        scopeStart = open;
        scopeEnd = closingBracket(blanked, open) + 1;
        scope = blanked.slice(scopeStart, scopeEnd);
      } else if (before.endsWith(')')) {
        const close = before.length - 1;
        scopeStart = openingBracket(blanked, close);
        scopeEnd = close + 1;
        scope = blanked.slice(scopeStart, scopeEnd);
      } else {
        use.problems.push(`cannot tell what "${match[0]}" aggregates`);
        continue;
      }
    }
    const madeHere = new Set(
      made.filter((item) => item.position >= scopeStart && item.position < scopeEnd).map((item) => item.label),
    );
    const metrics = metricNamesIn(scope);
    for (const label of labels) {
      if (madeHere.has(label)) continue;
      for (const metric of metrics) use.labelsOn.push({ metric, label, where: `${match[1]} (${match[2]})` });
    }
  }
  return use;
}

/** Everything in `expr` that /metrics does not have. */
function checkExpression(exposition: Exposition, expr: string, context: string): string[] {
  const use = analyzeExpression(expr);
  const problems = use.problems.map((problem) => `${context}: ${problem}`);
  if (use.metrics.size === 0) problems.push(`${context}: no metric found in ${expr}`);
  for (const metric of use.metrics) {
    if (PROMETHEUS_OWN_METRICS.has(metric)) continue;
    if (!isKnownMetric(exposition, metric)) problems.push(`${context}: metric ${metric} is not served on /metrics`);
  }
  for (const { metric, label, where } of use.labelsOn) {
    if (TARGET_LABELS.has(label) || PROMETHEUS_OWN_METRICS.has(metric) || !isKnownMetric(exposition, metric)) continue;
    const seen = exposition.labels.get(metric);
    if (!seen) {
      problems.push(
        `${context}: no series of ${metric} on /metrics to check its label ${label} against (the test should make one)`,
      );
    } else if (!seen.has(label)) {
      problems.push(
        `${context}: label ${label} (in ${where}) is not a label of ${metric}; it has: ${[...seen].join(', ') || 'none'}`,
      );
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// The files' own rules

interface AlertRule {
  alert: string;
  expr: string;
}

/** The rules of alerts.yml, and what is wrong with the file's structure. */
function readAlertRules(source: string, docAnchors: Set<string>): { rules: AlertRule[]; problems: string[] } {
  const problems: string[] = [];
  const rules: AlertRule[] = [];
  let document: unknown;
  try {
    document = parseYaml(source);
  } catch (error) {
    return { rules, problems: [`alerts.yml does not parse: ${(error as Error).message}`] };
  }
  const asMap = (value: unknown) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  const groups = asMap(document)?.groups;
  if (!Array.isArray(groups) || groups.length === 0) return { rules, problems: ['alerts.yml: no groups'] };
  const names = new Set<string>();
  for (const [groupIndex, groupValue] of groups.entries()) {
    const group = asMap(groupValue);
    if (!group || typeof group.name !== 'string' || !group.name) problems.push(`group #${groupIndex + 1}: no name`);
    if (!group || !Array.isArray(group.rules) || group.rules.length === 0) {
      problems.push(`group #${groupIndex + 1}: no rules`);
      continue;
    }
    for (const [ruleIndex, ruleValue] of group.rules.entries()) {
      const rule = asMap(ruleValue) ?? {};
      const id =
        typeof rule.alert === 'string' && rule.alert
          ? rule.alert
          : `group ${String(group.name)} rule #${ruleIndex + 1}`;
      const text = (value: unknown) => (typeof value === 'string' && value.trim() !== '' ? value : undefined);
      if (!text(rule.alert)) problems.push(`${id}: no alert name`);
      else if (names.has(rule.alert as string)) problems.push(`${id}: alert defined twice`);
      else names.add(rule.alert as string);
      if (!text(rule.expr)) problems.push(`${id}: no expr`);
      if (!text(rule.for) || !/^(\d+(ms|s|m|h|d|w|y))+$/.test(rule.for as string))
        problems.push(`${id}: no valid "for" duration (got ${JSON.stringify(rule.for)})`);
      const severity = asMap(rule.labels)?.severity;
      if (!text(severity) || !['critical', 'warning', 'info'].includes(severity as string))
        problems.push(`${id}: labels.severity missing or not critical|warning|info`);
      const annotations = asMap(rule.annotations);
      if (!text(annotations?.summary)) problems.push(`${id}: no annotations.summary`);
      if (!text(annotations?.description)) problems.push(`${id}: no annotations.description`);
      const runbook = text(annotations?.runbook);
      const anchor = runbook && /^docs\/monitoring\.md#([\w-]+)$/.exec(runbook)?.[1];
      if (!anchor) problems.push(`${id}: annotations.runbook is not docs/monitoring.md#<section>`);
      else if (!docAnchors.has(anchor))
        problems.push(`${id}: runbook section #${anchor} is not a heading of docs/monitoring.md`);
      const unknown = Object.keys(rule).filter(
        (key) => !['alert', 'expr', 'for', 'labels', 'annotations', 'keep_firing_for'].includes(key),
      );
      if (unknown.length > 0) problems.push(`${id}: unknown keys ${unknown.join(', ')}`);
      if (text(rule.alert) && text(rule.expr)) rules.push({ alert: rule.alert as string, expr: rule.expr as string });
    }
  }
  for (const required of REQUIRED_ALERTS) if (!names.has(required)) problems.push(`alert ${required} is missing`);
  return { rules, problems };
}

/** GitHub's heading anchors. */
function markdownAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const match of markdown.matchAll(/^#{1,6}\s+(.+?)\s*$/gm)) {
    anchors.add(
      match[1]
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-'),
    );
  }
  return anchors;
}

interface Panel {
  id?: number;
  title?: string;
  type?: string;
  gridPos?: { h?: number; w?: number; x?: number; y?: number };
  targets?: Array<{ expr?: string; refId?: string; datasource?: { type?: string; uid?: string } }>;
  panels?: Panel[];
}

/** The dashboard's structure; its targets' expressions. */
function readDashboard(source: string): { expressions: Array<{ context: string; expr: string }>; problems: string[] } {
  const problems: string[] = [];
  const expressions: Array<{ context: string; expr: string }> = [];
  let dashboard: any;
  try {
    dashboard = JSON.parse(source);
  } catch (error) {
    return { expressions, problems: [`dashboard JSON does not parse: ${(error as Error).message}`] };
  }
  if (dashboard.uid !== 'defect-control') problems.push(`dashboard uid is ${dashboard.uid}, not defect-control`);
  if (dashboard.schemaVersion !== 39) problems.push(`dashboard schemaVersion is ${dashboard.schemaVersion}, not 39`);
  if (typeof dashboard.title !== 'string' || !dashboard.title) problems.push('dashboard has no title');
  const variables: any[] = dashboard.templating?.list ?? [];
  const datasource = variables.find((variable) => variable.name === 'datasource');
  if (!datasource || datasource.type !== 'datasource' || datasource.query !== 'prometheus') {
    problems.push('no "datasource" template variable of type datasource for prometheus');
  }
  for (const variable of variables.filter((item) => item.type === 'query')) {
    const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    const labelValues = /^label_values\(\s*(.+?)\s*,\s*([a-zA-Z_]\w*)\s*\)$/.exec(query ?? '');
    if (!labelValues) {
      problems.push(`variable ${variable.name}: not a label_values(metric, label) query: ${query}`);
      continue;
    }
    expressions.push({
      context: `variable ${variable.name}`,
      expr: `count by (${labelValues[2]}) (${labelValues[1]})`,
    });
  }

  const panels: Panel[] = [];
  for (const panel of (dashboard.panels ?? []) as Panel[]) panels.push(panel, ...(panel.panels ?? []));
  if (panels.length === 0) problems.push('dashboard has no panels');
  const ids = new Set<number>();
  for (const [index, panel] of panels.entries()) {
    const id = `panel ${panel.title ? `"${panel.title}"` : `#${index + 1}`}`;
    if (typeof panel.title !== 'string' || !panel.title.trim()) problems.push(`${id}: no title`);
    if (typeof panel.type !== 'string' || !panel.type) problems.push(`${id}: no type`);
    const grid = panel.gridPos;
    if (!grid || !['h', 'w', 'x', 'y'].every((key) => Number.isInteger(grid[key as keyof typeof grid]))) {
      problems.push(`${id}: no gridPos {h, w, x, y}`);
    } else if (grid.x! < 0 || grid.w! < 1 || grid.x! + grid.w! > 24 || grid.h! < 1) {
      problems.push(`${id}: gridPos outside the 24 columns`);
    }
    if (typeof panel.id !== 'number' || ids.has(panel.id)) problems.push(`${id}: no id, or one another panel has`);
    else ids.add(panel.id);
    if (panel.type === 'row') continue; // a row holds panels, it queries nothing
    const targets = panel.targets ?? [];
    if (targets.length === 0) problems.push(`${id}: no targets`);
    const refIds = new Set<string>();
    for (const target of targets) {
      if (typeof target.expr !== 'string' || !target.expr.trim()) {
        problems.push(`${id}: a target without expr`);
        continue;
      }
      if (!target.refId || refIds.has(target.refId)) problems.push(`${id}: targets need distinct refIds`);
      refIds.add(target.refId ?? '');
      if (target.datasource && target.datasource.uid !== '${datasource}')
        problems.push(`${id}: a target not on the \${datasource} variable`);
      expressions.push({ context: `${id} target ${target.refId}`, expr: target.expr });
    }
  }
  return { expressions, problems };
}

// ---------------------------------------------------------------------------------------

describe('monitoring files: alerts, dashboard and docs against the real /metrics', () => {
  let system: TestSystem;
  let exposition: Exposition;

  before(async () => {
    system = await startTestSystem({ mode: 'embedded' });
    const { api } = system;
    const manager = await api.createUser('manager');
    const project = await api.post('/v1/projects', { name: 'Мониторинг' }, manager.token);
    assert.equal(project.status, 201);
    const defect = await api.post('/v1/defects', { project_id: project.body.id, title: 'Трещина' }, manager.token);
    assert.equal(defect.status, 201);
    assert.equal((await api.patch(`/v1/defects/${defect.body.id}`, { status: 'В работе' }, manager.token)).status, 200);
    assert.equal((await api.get('/v1/events?event_type=defect.*', manager.token)).status, 200);

    // One refused publish, so that events_publish_errors_total{service} has a series: the
    // relay keeps the events in the outbox and publishes them on its next try.
    // Embedded, the relay hands batches over to the in-process transport in its transaction.
    const transport = system.host.transport;
    const handOver = transport.handOver!.bind(transport);
    let refused = 0;
    transport.handOver = async (tx, messages) => {
      if (refused === 0) {
        refused += 1;
        throw new Error('test: the broker refuses this batch');
      }
      return handOver(tx, messages);
    };
    try {
      assert.equal(
        (await api.patch(`/v1/defects/${defect.body.id}`, { title: 'Трещина в стене' }, manager.token)).status,
        200,
      );
      await eventually(() => refused === 1, 10_000, 'a refused publish');
    } finally {
      transport.handOver = handOver;
    }

    // Every consumer has handled something, and the refused batch went out on the retry.
    exposition = await eventually(
      async () => {
        const response = await fetch(`${system.url}/metrics`);
        assert.equal(response.status, 200);
        const text = await response.text();
        const ready =
          /^events_publish_errors_total\{service="defects"\} 1$/m.test(text) &&
          /^outbox_pending_events\{service="defects"\} 0$/m.test(text) &&
          CONSUMERS.every((consumer) => text.includes(`event_delivery_latency_seconds_count{consumer="${consumer}"}`));
        return ready ? parseExposition(text) : undefined;
      },
      20_000,
      'every consumer to have handled events and the refused batch to be published',
    );
  });

  after(async () => {
    await system?.close();
  });

  it('the checker itself catches a misspelt metric, a wrong label and a broken rule', async () => {
    // Without this, a checker that accepts anything would pass every test below.
    assert.deepEqual(checkExpression(exposition, 'sum by (service) (rate(events_published_total[5m]))', 'good'), []);
    assert.match(
      checkExpression(exposition, 'sum(rate(events_publishd_total[5m]))', 'typo').join('\n'),
      /metric events_publishd_total is not served/,
    );
    assert.match(
      checkExpression(exposition, 'max by (servce) (outbox_pending_events)', 'typo').join('\n'),
      /label servce .* not a label of outbox_pending_events/,
    );
    assert.match(
      checkExpression(exposition, 'outbox_pending_events{consumer="x"} > 0', 'typo').join('\n'),
      /label consumer .* not a label of outbox_pending_events/,
    );
    assert.match(
      checkExpression(
        exposition,
        'histogram_quantile(0.99, sum by (le, route) (rate(event_handler_duration_seconds_bucket[5m])))',
        'typo',
      ).join('\n'),
      /label route .* not a label of event_handler_duration_seconds_bucket/,
    );
    assert.match(
      checkExpression(exposition, 'sum(rate(http_request_duration_second_bucket[5m]))', 'typo').join('\n'),
      /not served/,
    );
    assert.deepEqual(
      checkExpression(
        exposition,
        'sum by (route, status_class) (label_replace(rate(http_requests_total[5m]), "status_class", "${1}xx", "status", "(.).."))',
        'made label',
      ),
      [],
    );

    const anchors = new Set(['x']);
    const rule = (body: string) => `groups:\n  - name: g\n    rules:\n      - alert: A\n${body}`;
    const complete =
      '        expr: up == 0\n        for: 1m\n        labels:\n          severity: critical\n        annotations:\n          summary: "s"\n          description: d\n          runbook: "docs/monitoring.md#x"\n';
    assert.deepEqual(
      readAlertRules(rule(complete), anchors).problems.filter((problem) => !problem.startsWith('alert ')),
      [],
    );
    assert.match(
      readAlertRules(rule(complete.replace('        for: 1m\n', '')), anchors).problems.join('\n'),
      /A: no valid "for"/,
    );
    assert.match(
      readAlertRules(rule(complete.replace('severity: critical', 'severty: critical')), anchors).problems.join('\n'),
      /A: labels.severity/,
    );
    assert.match(
      readAlertRules(rule(complete.replace(/ *summary: "s"\n/, '')), anchors).problems.join('\n'),
      /A: no annotations.summary/,
    );
    assert.match(
      readAlertRules(rule(complete.replace('#x', '#y')), anchors).problems.join('\n'),
      /#y is not a heading/,
    );
    assert.match(
      readAlertRules(rule(complete.replace('  runbook', '    runbook')), anchors).problems.join('\n'),
      /does not parse/,
    );
  });

  it('alerts.yml parses, and every rule has alert, expr, for, labels.severity, annotations.summary and a runbook section that exists', async () => {
    const anchors = markdownAnchors(await fs.readFile(MONITORING_DOC, 'utf8'));
    const { rules, problems } = readAlertRules(await fs.readFile(ALERTS_FILE, 'utf8'), anchors);
    assert.deepEqual(problems, []);
    assert.deepEqual(rules.map((rule) => rule.alert).sort(), [...REQUIRED_ALERTS].sort());
  });

  it('every metric and label the alert expressions use is on /metrics', async () => {
    const anchors = markdownAnchors(await fs.readFile(MONITORING_DOC, 'utf8'));
    const { rules } = readAlertRules(await fs.readFile(ALERTS_FILE, 'utf8'), anchors);
    assert.ok(rules.length > 0);
    const problems = rules.flatMap((rule) => checkExpression(exposition, rule.expr, `alert ${rule.alert}`));
    assert.deepEqual(problems, []);
  });

  it('the dashboard parses; every panel has a title, type, gridPos and a target', async () => {
    const { expressions, problems } = readDashboard(await fs.readFile(DASHBOARD_FILE, 'utf8'));
    assert.deepEqual(problems, []);
    assert.ok(expressions.length >= 15, `only ${expressions.length} queries`);
  });

  it("every metric and label the dashboard's queries use is on /metrics", async () => {
    const { expressions } = readDashboard(await fs.readFile(DASHBOARD_FILE, 'utf8'));
    const problems = expressions.flatMap(({ context, expr }) => checkExpression(exposition, expr, context));
    assert.deepEqual(problems, []);
  });

  it('prometheus.yml scrapes the all-in-one process and loads alerts.yml', async () => {
    const source = await fs.readFile(PROMETHEUS_FILE, 'utf8');
    const config = parseYaml(source) as Record<string, any>;
    assert.deepEqual(config.rule_files, ['alerts.yml']);
    const job = (config.scrape_configs as any[]).find((item) => item.job_name === 'defect-control');
    assert.ok(job, 'a defect-control job');
    assert.equal(job.metrics_path ?? '/metrics', '/metrics');
    assert.deepEqual(
      job.static_configs.map((item: any) => item.targets),
      [['localhost:8000']],
    );
    for (const [service, port] of Object.entries({
      gateway: 8000,
      auth: 8001,
      projects: 8002,
      defects: 8003,
      notifications: 8004,
      'event-log': 8005,
    })) {
      assert.match(
        source,
        new RegExp(
          `#\\s*- job_name: ${service}\\n\\s*#\\s*static_configs:\\n\\s*#\\s*- targets: \\["localhost:${port}"\\]`,
        ),
        `commented job for ${service}`,
      );
    }
  });

  it('docs/monitoring.md names every metric the processes define and every alert', async () => {
    const doc = await fs.readFile(MONITORING_DOC, 'utf8');
    const ours = [...exposition.families.keys()].filter((name) => !/^(process_|nodejs_)/.test(name));
    assert.ok(ours.length >= 10, ours.join(', '));
    assert.deepEqual(
      ours.filter((name) => !doc.includes(`\`${name}\``)),
      [],
      'metrics missing from docs/monitoring.md',
    );
    assert.deepEqual(
      REQUIRED_ALERTS.filter((name) => !doc.includes(`### ${name}\n`)),
      [],
      'alerts without a runbook section',
    );
  });
});
