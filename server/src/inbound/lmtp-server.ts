/**
 * The LMTP listener the MTA hands inbound mail to (RFC 2033, on loopback): nodemailer's
 * smtp-server with `lmtp: true`, which answers each recipient on its own after DATA. Each answer
 * waits for what the mail does for that recipient (inbound-processor.ts):
 *
 * - 250 once it is committed (a post, a queued command answer, a suppression) or knowingly dropped;
 * - 451 when roomcast cannot do it now (Postgres or Redis away, a bug, a sender over its rate): the
 *   MTA keeps the mail and offers it again; the post is idempotent, so nothing is done twice;
 * - 550 or 552 when it never can be, with the reason, which the MTA puts in its bounce.
 *
 * At RCPT an address that is not one of ours in shape is refused (550 5.1.1); its token is
 * checked only after DATA, with the From, so a wrong token and a right one are answered alike.
 * Mail over the size limit is refused whole (552) before it is parsed.
 */
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { toAppError, UnavailableError } from '../errors';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { parseInboundAddress } from '../mail/inbound-addresses';
import type { InboundOutcome, InboundProcessor, ReceivedMail } from './inbound-processor';

export interface LmtpListenerOptions {
  host: string;
  port: number;
  domain: string;
  maxBytes: number;
  processor: Pick<InboundProcessor, 'process'>;
  metrics: Pick<Metrics, 'inboundMail'>;
  logger: Logger;
}

/** An SMTP reply carried as an Error, as smtp-server wants it. */
const reply = (code: number, text: string): Error => Object.assign(new Error(text), { responseCode: code });

/** An outcome, or a failure that says to try again later. */
type Answer = InboundOutcome | { outcome: 'deferred'; reason: 'unavailable' | 'error'; text: string };

async function readAll(stream: SMTPServerDataStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export class LmtpListener {
  private server: SMTPServer | null = null;

  constructor(private readonly o: LmtpListenerOptions) {}

  /** The port listened on (the configured one, or the one picked for port 0). */
  get port(): number {
    return (this.server?.server.address() as AddressInfo | null)?.port ?? this.o.port;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = new SMTPServer({
      lmtp: true,
      name: 'roomcast',
      banner: 'roomcast inbound mail',
      size: this.o.maxBytes,
      // Advertised in LHLO, so the MTA refuses a larger mail before sending it; one sent anyway is refused after DATA.
      rejectOversized: true,
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      disableReverseLookup: true,
      logger: false,
      // Sessions still open at a stop are cut after this; the MTA offers their mail again.
      closeTimeout: 2000,
      onRcptTo: (address, _session, callback) => {
        if (parseInboundAddress(address.address, this.o.domain) === null) return callback(reply(550, '5.1.1 no such address'));
        callback();
      },
      onData: (stream, session, callback) => {
        this.receive(stream, session).then(
          (answers) => callback(null, answers),
          (err: unknown) => callback(err as Error),
        );
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.o.logger.warn({ err: err.message }, 'lmtp listener error'));
    this.server = server;
    this.o.logger.info({ host: this.o.host, port: this.port }, 'lmtp listener for inbound mail listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** One answer per recipient, in RCPT order (LMTP). */
  private async receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<(string | Error)[]> {
    const raw = await readAll(stream);
    const recipients = session.envelope.rcptTo.map((r) => r.address);
    // rejectOversized: smtp-server answers 552 to every recipient whatever we say; this only skips the parse.
    if (stream.sizeExceeded) return recipients.map(() => reply(552, '5.3.4 message too big'));
    let parsed: ParsedMail;
    try {
      parsed = await simpleParser(raw);
    } catch (err) {
      this.o.logger.info({ err: (err as Error).message }, 'inbound mail refused: it cannot be parsed');
      return recipients.map(() => reply(550, '5.6.0 the message cannot be parsed'));
    }
    const envelopeFrom = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
    const answers: (string | Error)[] = [];
    for (const recipient of recipients) answers.push(this.answer(await this.outcome({ envelopeFrom, raw, parsed }, recipient), recipient));
    return answers;
  }

  private async outcome(mail: ReceivedMail, recipient: string): Promise<Answer> {
    try {
      return await this.o.processor.process(mail, recipient);
    } catch (err) {
      const mapped = toAppError(err);
      if (mapped instanceof UnavailableError) return { outcome: 'deferred', reason: 'unavailable', text: '4.3.0 roomcast is unavailable; try again later' };
      this.o.logger.error({ err: (err as Error).message, stack: (err as Error).stack }, 'inbound mail failed; the MTA will offer it again');
      return { outcome: 'deferred', reason: 'error', text: '4.3.0 temporary failure; try again later' };
    }
  }

  private answer(a: Answer, recipient: string): string | Error {
    this.o.metrics.inboundMail.inc({ outcome: a.outcome, reason: a.reason });
    // The token is a secret of its user: logs name the purpose only.
    const log = { outcome: a.outcome, reason: a.reason, to: recipient.replace(/\+[^@]*/, '+…'), ...('messageId' in a ? { messageId: a.messageId } : {}) };
    switch (a.outcome) {
      case 'deferred':
        this.o.logger.warn(log, 'inbound mail deferred');
        return reply(451, a.text);
      case 'refused':
        this.o.logger.info(log, 'inbound mail refused');
        return reply(a.code, a.text);
      default:
        this.o.logger.info(log, 'inbound mail accepted');
        return `2.0.0 ${a.outcome}`;
    }
  }
}
