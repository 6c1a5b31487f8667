import fs from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type StreamTransport from 'nodemailer/lib/stream-transport/index.js';

export interface OutgoingMail {
  to: { name: string; address: string };
  subject: string;
  text: string;
  html: string;
  /** Stable per event and recipient: a resend (should one ever happen) is recognisable. */
  messageId: string;
  headers?: Record<string, string>;
}

export interface Mailer {
  /** Where mail goes, for the log: the SMTP server, or the directory of .eml files. */
  readonly description: string;
  /** Resolves once the message was accepted (by the SMTP server) or written (as a file). */
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/** Bounded so that an SMTP server that hangs fails the attempt (and it is retried) instead of stalling the consumer. */
const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000, dnsTimeout: 10_000 };

/**
 * SMTP through nodemailer when SMTP_URL is set (smtp://user:pass@host:port, smtps:// for
 * implicit TLS); otherwise each message as an RFC 822 .eml file under DATA_DIR/mail, which
 * any mail client opens. One connection per message: mail is rare, and a failure stays
 * with the one message it hit.
 */
export function createMailer(options: { smtpUrl?: string; from: string; dataDir: string }): Mailer {
  if (options.smtpUrl) {
    const transport = nodemailer.createTransport({ url: options.smtpUrl, ...SMTP_TIMEOUTS }, { from: options.from });
    const url = new URL(options.smtpUrl);
    return {
      description: `SMTP at ${url.hostname}:${url.port || (url.protocol === 'smtps:' ? 465 : 587)}`,
      async send(mail) {
        await transport.sendMail(toNodemailer(mail));
      },
      close: () => transport.close(),
    };
  }
  const directory = path.join(options.dataDir, 'mail');
  const streamOptions: StreamTransport.Options = { streamTransport: true, buffer: true, newline: 'windows' };
  const composer = nodemailer.createTransport(streamOptions, { from: options.from });
  return {
    description: `.eml files in ${directory}`,
    async send(mail) {
      // (The typings resolve this overload to SMTP's result; the stream transport's carries the message.)
      const info = (await composer.sendMail(toNodemailer(mail))) as unknown as StreamTransport.SentMessageInfo;
      await fs.mkdir(directory, { recursive: true });
      // Named after the message id: writing the same message again replaces the file, and
      // the rename makes a file appear whole or not at all.
      const file = path.join(directory, `${fileNameOf(mail.messageId)}.eml`);
      const temporary = `${file}.tmp`;
      await fs.writeFile(temporary, info.message as Buffer);
      await fs.rename(temporary, file);
    },
    close: () => composer.close(),
  };
}

function toNodemailer(mail: OutgoingMail): nodemailer.SendMailOptions {
  return {
    to: mail.to,
    subject: mail.subject,
    text: mail.text,
    html: mail.html,
    messageId: mail.messageId,
    headers: mail.headers,
  };
}

function fileNameOf(messageId: string): string {
  return messageId.replace(/^<|>$/g, '').replace(/[^A-Za-z0-9@._-]/g, '_');
}

/** nodemailer's errors carry the SMTP reply code: 5xx is a refusal a retry will not change. */
export function isPermanentSmtpRefusal(error: unknown): boolean {
  const code = (error as { responseCode?: number })?.responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}
