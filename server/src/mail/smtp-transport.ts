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

/** An SMTP failure as the senders read it: the relay's code (none when the connection failed) and its answer for the record. */
export function smtpFailure(err: unknown): { code: number | undefined; answer: string } {
  const code = (err as { responseCode?: number }).responseCode;
  return { code, answer: `${code ?? (err as { code?: string }).code ?? 'error'}: ${(err as Error).message}` };
}
