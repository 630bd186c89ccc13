/**
 * The pooled SMTP connection to the configured relay, as every mail sender (the mail queue's,
 * the campaigns') opens it: kept-open connections instead of a handshake per mail, and timeouts
 * that turn a silent relay into an error instead of a hang.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { Config } from '../../../runtime/config';

/** What a sender needs of the mail settings (runtime/config.ts). */
export type SmtpSettings = Pick<Config['mail'], 'host' | 'port' | 'tls' | 'auth' | 'from' | 'domain' | 'retryFirstMs'>;

export function createSmtpTransport(smtp: SmtpSettings, o: { maxConnections: number }): Transporter {
  return nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.tls === 'tls',
    requireTLS: smtp.tls === 'starttls',
    ignoreTLS: smtp.tls === 'none',
    auth: smtp.auth ?? undefined,
    pool: true,
    maxConnections: o.maxConnections,
    maxMessages: 1000,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 60_000,
  });
}

/**
 * How a send failed, as every sender acts on it:
 * - `slow_down`: 421 or 452, the relay asks clients to send less;
 * - `deferred`: another 4xx, try this mail later;
 * - `refused`: a 5xx to the recipient (at RCPT TO): the address is bad, and only then is it suppressed;
 * - `relay_error`: a 5xx anywhere else (authentication, MAIL FROM, the greeting, DATA): the relay
 *   refuses us or this content, not the address, so no address is suppressed for it; retried;
 * - `timeout`: no answer at all (refused connection, timeout).
 */
export type SmtpFailureKind = 'slow_down' | 'deferred' | 'refused' | 'relay_error' | 'timeout';

export function smtpFailure(err: unknown): { kind: SmtpFailureKind; code: number | undefined; answer: string } {
  const e = err as { responseCode?: number; command?: string; code?: string; message?: string };
  const code = e.responseCode;
  const answer = `${code ?? e.code ?? 'error'}: ${e.message ?? String(err)}`;
  return { kind: failureKind(code, e.command), code, answer };
}

function failureKind(code: number | undefined, command: string | undefined): SmtpFailureKind {
  if (code === undefined) return 'timeout';
  if (code === 421 || code === 452) return 'slow_down';
  if (code < 500) return 'deferred';
  return command === 'RCPT TO' ? 'refused' : 'relay_error';
}
