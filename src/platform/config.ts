import { isIP } from 'node:net';
import path from 'node:path';
import ms, { type StringValue } from 'ms';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value, ValuePointer } from '@sinclair/typebox/value';

/**
 * The one place that reads process.env. Every variable is declared here with its
 * default; a bad value stops the process at start with a message naming the variable.
 */
const Credentials = Type.String({ pattern: '^[^:]+:.+$', description: 'name:password' });
const Url = Type.String({ pattern: '^[a-z][a-z0-9+.-]*://' });

const DURATION = '\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)\\s*';
/** One delay with a unit, like 30s or 500ms (its bounds are checked once parsed: durationProblems). */
const Duration = (defaultValue: string) =>
  Type.String({ pattern: `^${DURATION}$`, default: defaultValue, description: 'a duration like 30s, 500ms or 15m' });

const ConfigSchema = Type.Object({
  // Unset: 127.0.0.1 in embedded mode (a laptop's demo, with the demo password), else 0.0.0.0.
  HOST: Type.Optional(Type.String({ minLength: 1 })),
  PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  DATA_DIR: Type.String({ default: './data' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  // Unset: each entry point's own default (a service 10, the all-in-one process 20).
  DATABASE_POOL_SIZE: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
  AMQP_URL: Type.Optional(Type.String({ pattern: '^amqps?://' })),
  DEMO_USER: Type.Optional(Credentials),
  ADMIN_USER: Type.Optional(Credentials),
  JWT_PRIVATE_KEY: Type.Optional(Type.String({ pattern: 'BEGIN PRIVATE KEY' })),
  JWT_PUBLIC_KEY: Type.Optional(Type.String({ pattern: 'BEGIN PUBLIC KEY' })),
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 60, maximum: 7 * 24 * 3600, default: 3600 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info' },
  ),
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://' })),
  MAIL_FROM: Type.String({ minLength: 3, default: 'Defect Control <noreply@defect-control.local>' }),
  EVENTS_RETRY_DELAYS: Type.String({
    pattern: `^${DURATION}(,${DURATION})*$`,
    default: '1s,5s,30s,2m,10m',
    description: 'comma-separated delays like 200ms,1s,2m',
  }),
  EVENTS_CONFIRM_TIMEOUT: Duration('30s'),
  // Operator endpoints (issue 11, limits): unset, /metrics stays open and /readyz details go to loopback only.
  METRICS_TOKEN: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9._~+/=-]{16,256}$',
      description: '16-256 characters of A-Z a-z 0-9 . _ ~ + / = -',
    }),
  ),
  METRICS_REFRESH_INTERVAL: Duration('5s'),
  ASSIGNMENT_MAILS_PER_HOUR: Type.Integer({ minimum: 1, maximum: 1000, default: 3 }),
  // Sign-in throttling and password rules (issue 11); docs/security.md.
  SIGN_IN_MAX_FAILURES_PER_USERNAME: Type.Integer({ minimum: 1, maximum: 1000, default: 5 }),
  SIGN_IN_MAX_FAILURES_PER_ADDRESS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 50 }),
  SIGN_IN_FAILURE_WINDOW: Duration('15m'),
  REGISTRATIONS_PER_ADDRESS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10 }),
  REGISTRATION_WINDOW: Duration('1h'),
  // The event stream's limits (docs/security.md, Limits): open streams, and what a client may leave unread.
  EVENT_STREAMS_PER_USER: Type.Integer({ minimum: 1, maximum: 1_000, default: 5 }),
  EVENT_STREAMS_PER_PROCESS: Type.Integer({ minimum: 1, maximum: 100_000, default: 1_000 }),
  EVENT_STREAM_MAX_UNSENT_BYTES: Type.Integer({ minimum: 1_024, maximum: 1_073_741_824, default: 1_048_576 }),
  EVENT_STREAM_CATCH_UP_PAGE: Type.Integer({ minimum: 1, maximum: 10_000, default: 500 }),
  // Proxies whose X-Forwarded-For names the client (docs/security.md): unset, the socket's peer is the client.
  TRUSTED_PROXIES: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'comma-separated IP addresses or CIDR ranges, like 127.0.0.1,10.0.0.0/8',
    }),
  ),
  AUTH_URL: Type.Optional(Url),
  PROJECTS_URL: Type.Optional(Url),
  DEFECTS_URL: Type.Optional(Url),
  EVENTS_URL: Type.Optional(Url),
});

type RawConfig = Static<typeof ConfigSchema>;

export type Config = Readonly<
  Omit<RawConfig, 'HOST' | 'DEMO_USER' | 'ADMIN_USER' | 'LOG_LEVEL'> & {
    HOST: string;
    LOG_LEVEL: string;
    DATA_DIR: string;
    DEMO_USER?: { username: string; password: string };
    ADMIN_USER?: { username: string; password: string };
    /** true when no DATABASE_URL is set: the system runs on PGlite under DATA_DIR */
    embedded: boolean;
    /** EVENTS_RETRY_DELAYS in milliseconds: one retry after each, then the dead-letter queue. */
    retryDelaysMs: number[];
    /** EVENTS_CONFIRM_TIMEOUT in milliseconds: how long the relay waits for the broker's confirm of a batch. */
    confirmTimeoutMs: number;
    /** METRICS_REFRESH_INTERVAL in milliseconds: how long /metrics serves one reading of the stored state. */
    metricsRefreshMs: number;
    /** SIGN_IN_FAILURE_WINDOW in milliseconds. */
    signInFailureWindowMs: number;
    /** REGISTRATION_WINDOW in milliseconds. */
    registrationWindowMs: number;
    /** TRUSTED_PROXIES as a list; empty when unset (no proxy is trusted). */
    trustedProxies: string[];
  }
>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const EMBEDDED_DEMO_USER = 'testuser:123456';

/** Variables whose values may carry a password or a key. */
const SECRET_VARIABLES = new Set([
  'DATABASE_URL',
  'AMQP_URL',
  'SMTP_URL',
  'JWT_PRIVATE_KEY',
  'DEMO_USER',
  'ADMIN_USER',
  'METRICS_TOKEN',
]);

/** Reads and validates the configuration; pure over the given environment. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw = pickDeclared(ConfigSchema, env);
  const converted = Value.Default(ConfigSchema, convertWholeNumbers(raw));
  const problems = schemaProblems(converted, raw);
  if (problems.length === 0) problems.push(...durationProblems(converted as RawConfig));
  if (problems.length === 0) problems.push(...trustedProxyProblems((converted as RawConfig).TRUSTED_PROXIES));
  if (problems.length > 0) {
    throw new ConfigError(`Invalid configuration:\n  ${[...new Set(problems)].join('\n  ')}`);
  }
  const config = converted as RawConfig;
  const embedded = !config.DATABASE_URL;
  return Object.freeze({
    ...config,
    HOST: config.HOST ?? (embedded ? '127.0.0.1' : '0.0.0.0'),
    DATA_DIR: path.resolve(config.DATA_DIR),
    embedded,
    DEMO_USER: parseCredentials(config.DEMO_USER ?? (embedded ? EMBEDDED_DEMO_USER : undefined)),
    ADMIN_USER: parseCredentials(config.ADMIN_USER),
    retryDelaysMs: parseDelays(config.EVENTS_RETRY_DELAYS),
    confirmTimeoutMs: parseDelays(config.EVENTS_CONFIRM_TIMEOUT)[0],
    metricsRefreshMs: parseDelays(config.METRICS_REFRESH_INTERVAL)[0],
    signInFailureWindowMs: parseDelays(config.SIGN_IN_FAILURE_WINDOW)[0],
    registrationWindowMs: parseDelays(config.REGISTRATION_WINDOW)[0],
    trustedProxies: parseAddressList(config.TRUSTED_PROXIES),
  });
}

/** What the schema finds wrong, a line per variable; secrets are named, never shown. */
function schemaProblems(converted: unknown, raw: Record<string, string>): string[] {
  return [...Value.Errors(ConfigSchema, converted)].map((error) => {
    const variable = error.path.slice(1);
    // A URL or a credential may hold a password: name the variable, never print its value.
    const shown = SECRET_VARIABLES.has(variable) ? '(value hidden)' : JSON.stringify(ValuePointer.Get(raw, error.path));
    return `${variable}=${shown}: ${error.message}`;
  });
}

/** `1s,5s,30s` in milliseconds. */
const parseDelays = (delays: string) => delays.split(',').map((delay) => ms(delay.trim() as StringValue));

/** Node's timers hold at most 2^31-1 ms (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay of 0, or one a timer cannot hold, would make the relay or the retries spin. */
function durationProblems(config: RawConfig): string[] {
  const variables = {
    EVENTS_RETRY_DELAYS: config.EVENTS_RETRY_DELAYS,
    EVENTS_CONFIRM_TIMEOUT: config.EVENTS_CONFIRM_TIMEOUT,
    METRICS_REFRESH_INTERVAL: config.METRICS_REFRESH_INTERVAL,
    SIGN_IN_FAILURE_WINDOW: config.SIGN_IN_FAILURE_WINDOW,
    REGISTRATION_WINDOW: config.REGISTRATION_WINDOW,
  };
  return Object.entries(variables)
    .filter(([, given]) => parseDelays(given).some((delayMs) => !(delayMs >= 1 && delayMs <= MAX_TIMER_MS)))
    .map(
      ([variable, given]) =>
        `${variable}=${JSON.stringify(given)}: each delay must be at least 1ms and at most 24 days`,
    );
}

const parseAddressList = (list: string | undefined) =>
  (list ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');

/** An address or a range `address/prefix`: Fastify's proxy matching would throw on anything else at start. */
function isAddressOrRange(entry: string): boolean {
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

function trustedProxyProblems(list: string | undefined): string[] {
  const wrong = parseAddressList(list).filter((entry) => !isAddressOrRange(entry));
  if (list !== undefined && parseAddressList(list).length === 0) wrong.push(list);
  return wrong.map(
    (entry) => `TRUSTED_PROXIES: ${JSON.stringify(entry)} is not an IP address or a CIDR range like 10.0.0.0/8`,
  );
}

/** Only declared variables, with empty strings treated as unset (as shells often pass them). */
function pickDeclared(schema: TSchema & { properties: Record<string, unknown> }, env: NodeJS.ProcessEnv) {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(schema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') picked[key] = value;
  }
  return picked;
}

const INTEGER_VARIABLES = Object.entries(ConfigSchema.properties)
  .filter(([, schema]) => (schema as TSchema).type === 'integer')
  .map(([name]) => name);

/**
 * Whole decimal numbers become integers; anything else ("80.5", "1e3", "true") stays text
 * and fails validation as given. (TypeBox's Value.Convert would read such values by their
 * leading digits, and it converts in place.)
 */
function convertWholeNumbers(raw: Record<string, string>): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...raw };
  for (const name of INTEGER_VARIABLES) {
    if (/^[+-]?\d+$/.test(raw[name] ?? '')) copy[name] = Number(raw[name]);
  }
  return copy;
}

function parseCredentials(value: string | undefined) {
  if (!value) return undefined;
  const separator = value.indexOf(':');
  return { username: value.slice(0, separator), password: value.slice(separator + 1) };
}
