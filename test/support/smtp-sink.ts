import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** A message as the SMTP server received it, decoded enough to assert on. */
export interface ReceivedMail {
  /** RCPT TO addresses of the SMTP transaction. */
  recipients: string[];
  raw: string;
  headers: Record<string, string>;
  subject: string;
  to: string;
  /** Our header: `<event type> <event id>`. */
  event: string;
  text?: string;
  html?: string;
}

export interface SmtpSink {
  port: number;
  url: string;
  received: ReceivedMail[];
  /** RCPT TO commands refused so far, by address. */
  refusals: Map<string, number>;
  /**
   * Refuses RCPT TO for `address` the next `times` times (Infinity: until accept()) with
   * the given reply code: 451 a temporary failure, 550 a permanent one.
   */
  refuse(address: string, times: number, code?: number): void;
  accept(address: string): void;
  /** Mail received for an event id (by our X-Defect-Control-Event header). */
  forEvent(eventId: string): ReceivedMail[];
  to(address: string): ReceivedMail[];
  /** Stops listening (clients now get "connection refused"); start() listens again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A real SMTP server (smtp-server) on a free port that keeps what it receives. */
export async function startSmtpSink(): Promise<SmtpSink> {
  const received: ReceivedMail[] = [];
  const refusals = new Map<string, number>();
  const refusing = new Map<string, { left: number; code: number }>();
  let port = 0;

  const createServer = () =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onRcptTo(address, _session, callback) {
        const key = address.address.toLowerCase();
        const rule = refusing.get(key);
        if (rule && rule.left > 0) {
          rule.left -= 1;
          refusals.set(key, (refusals.get(key) ?? 0) + 1);
          const error = Object.assign(new Error(rule.code >= 500 ? 'Mailbox unavailable' : 'Try again later'), {
            responseCode: rule.code,
          });
          return callback(error);
        }
        callback();
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          received.push({
            ...parseMail(raw),
            recipients: session.envelope.rcptTo.map((rcpt) => rcpt.address.toLowerCase()),
          });
          callback();
        });
      },
    });

  let server: SMTPServer | undefined;
  const listen = async () => {
    if (server) return;
    const starting = createServer();
    await new Promise<void>((resolve, reject) => {
      starting.once('error', reject);
      starting.listen(port, '127.0.0.1', () => resolve());
    });
    server = starting;
    port = (starting.server.address() as AddressInfo).port;
  };
  const stop = async () => {
    const stopping = server;
    server = undefined;
    if (stopping) await new Promise<void>((resolve) => stopping.close(() => resolve()));
  };
  await listen();

  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    received,
    refusals,
    refuse(address, times, code = 451) {
      refusing.set(address.toLowerCase(), { left: times, code });
    },
    accept(address) {
      refusing.delete(address.toLowerCase());
    },
    forEvent: (eventId) => received.filter((mail) => mail.event.endsWith(eventId)),
    to: (address) => received.filter((mail) => mail.recipients.includes(address.toLowerCase())),
    stop,
    start: listen,
    close: stop,
  };
}

/** Just enough MIME: headers (encoded words decoded), and the text and HTML parts of a multipart body. */
export function parseMail(raw: string): Omit<ReceivedMail, 'recipients'> {
  const { headers, body } = splitEntity(raw);
  const parts: Record<string, string> = {};
  collectParts(headers, body, parts);
  return {
    raw,
    headers,
    subject: headers['subject'] ?? '',
    to: headers['to'] ?? '',
    event: headers['x-defect-control-event'] ?? '',
    text: parts['text/plain'],
    html: parts['text/html'],
  };
}

function splitEntity(raw: string): { headers: Record<string, string>; body: string } {
  const normalized = raw.replace(/\r\n/g, '\n');
  const end = normalized.indexOf('\n\n');
  const head = end === -1 ? normalized : normalized.slice(0, end);
  const body = end === -1 ? '' : normalized.slice(end + 2);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = decodeWords(line.slice(colon + 1).trim());
  }
  return { headers, body };
}

function collectParts(headers: Record<string, string>, body: string, parts: Record<string, string>): void {
  const contentType = headers['content-type'] ?? 'text/plain';
  const type = contentType.split(';')[0].trim().toLowerCase();
  if (type.startsWith('multipart/')) {
    const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
    if (!boundary) return;
    const sections = body.split(`--${boundary}`).slice(1);
    for (const section of sections) {
      if (section.startsWith('--')) break;
      const part = splitEntity(section.replace(/^\n/, ''));
      collectParts(part.headers, part.body, parts);
    }
    return;
  }
  parts[type] ??= decodeBody(body, headers['content-transfer-encoding'] ?? '7bit');
}

function decodeBody(body: string, encoding: string): string {
  switch (encoding.toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable':
      return decodeQuotedPrintable(body.replace(/=\n/g, ''));
    default:
      return body;
  }
}

function decodeQuotedPrintable(text: string, underscoreIsSpace = false): string {
  return quotedPrintableBytes(text, underscoreIsSpace).toString('utf8');
}

function quotedPrintableBytes(text: string, underscoreIsSpace: boolean): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    if (char === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (underscoreIsSpace && char === '_') {
      bytes.push(0x20);
    } else {
      bytes.push(...Buffer.from(char, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

/** RFC 2047 encoded words; adjacent ones are joined (their bytes may split a character). */
function decodeWords(value: string): string {
  const word = /=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g;
  return value.replace(/(\?=)\s+(?==\?)/g, '$1').replace(/(?:=\?[^?]+\?[BbQq]\?[^?]*\?=)+/g, (run) => {
    const chunks: Buffer[] = [];
    for (const [, , kind, text] of run.matchAll(word)) {
      chunks.push(kind.toUpperCase() === 'B' ? Buffer.from(text, 'base64') : quotedPrintableBytes(text, true));
    }
    return Buffer.concat(chunks).toString('utf8');
  });
}
