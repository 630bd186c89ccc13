/**
 * The LMTP listener the MTA hands inbound mail to (RFC 2033): nodemailer's smtp-server with
 * `lmtp: true`, which answers each recipient on its own after DATA. It binds ROOMCAST_LMTP_HOST
 * (loopback unless set) and talks only to the clients ROOMCAST_LMTP_ALLOW names (loopback unless
 * set): any other is cut at connect, before it can say anything. Each answer waits for what the
 * mail does for that recipient (inbound-processor.ts):
 *
 * - 250 once it is committed (a post, a queued command answer, a suppression) or knowingly dropped;
 * - 451 when roomcast cannot do it now (Postgres or Redis away, a bug, a sender over its rate): the
 *   MTA keeps the mail and offers it again; the post is idempotent, so nothing is done twice;
 * - 550 or 552 when it never can be, with the reason, which the MTA puts in its bounce: also when
 *   the mail itself makes a step fail in a way that would fail again (mailparser cannot read it,
 *   the send path refuses what it holds), as a retry for a day would change nothing.
 *
 * At RCPT an address that is not one of ours in shape is refused (550 5.1.1); its token is
 * checked only after DATA, with the From, so a wrong token and a right one are answered alike.
 * Mail over the size limit is refused whole (552): what arrives beyond the limit is read and
 * thrown away, never kept. The body is parsed only for a recipient whose checks pass, once.
 */
import { BlockList, isIPv6, type AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { toAppError, UnavailableError } from '../errors';
import type { Logger } from '../logger';
import { parseInboundAddress } from '../mail/inbound-addresses';
import type { Metrics } from '../metrics';
import type { InboundOutcome, InboundProcessor, ReceivedMail } from './inbound-processor';
import { MailHeaders } from './mail-headers';

export interface LmtpListenerOptions {
  host: string;
  port: number;
  /** Addresses and CIDR ranges of the clients (MTAs) that may connect. */
  allow: readonly string[];
  domain: string;
  maxBytes: number;
  processor: Pick<InboundProcessor, 'process'>;
  metrics: Pick<Metrics, 'inboundMail'>;
  logger: Logger;
}

/** Connections at once: Exim opens one per delivery process; more is someone else, or a flood. */
const MAX_CLIENTS = 32;
/** How long stop() waits for mail being processed to finish before it gives up on it. */
const STOP_WAIT_MS = 10_000;

/**
 * mailparser's work bounded to what a reply needs: HTML over 1 MiB is not turned into text
 * (the mail then has no text and is refused as such), and nothing is done to make HTML out of
 * the text, links clickable, or inline images into the HTML, which no one here reads.
 */
const PARSE_OPTIONS = { maxHtmlLengthToParse: 1024 * 1024, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true, checksumAlgo: false } as const;

/** mailparser could not read the mail: the same bytes fail the same way every time. */
export class UnparseableMailError extends Error {
  override name = 'UnparseableMailError';
  readonly code = 'unparseable_mail';
  constructor(cause: unknown) {
    super('the message cannot be parsed', { cause });
  }
}

/** An SMTP reply carried as an Error, as smtp-server wants it. */
const reply = (code: number, text: string): Error => Object.assign(new Error(text), { responseCode: code });

/** An outcome, or a failure the listener itself turned into an answer. */
type Answer =
  | InboundOutcome
  | { outcome: 'deferred'; reason: 'unavailable' | 'error'; text: string }
  | { outcome: 'refused'; reason: 'unparseable' | 'invalid'; code: 550; text: string };

/** The whole mail, or null when it is over `maxBytes`: the rest is read (the client must finish DATA) and dropped. */
async function readCapped(stream: SMTPServerDataStream, maxBytes: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size <= maxBytes) chunks.push(chunk as Buffer);
    else chunks.length = 0;
  }
  return size > maxBytes || stream.sizeExceeded ? null : Buffer.concat(chunks);
}

/** `::ffff:127.0.0.1` as `127.0.0.1`, so IPv4 rules match clients of a dual-stack socket. */
const plainAddress = (ip: string): string => ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');

function allowList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', bits] = entry.split('/');
    const type = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

/**
 * A failure the mail itself causes, which a retry would meet again: the send path refusing what
 * it holds (a 4xx other than a rate limit), or Postgres refusing its data (SQLSTATE class 22).
 */
function deterministic(err: unknown, mapped: { status: number }): boolean {
  const sqlstate = (err as { code?: unknown } | null)?.code;
  return (mapped.status >= 400 && mapped.status < 500 && mapped.status !== 429) || (typeof sqlstate === 'string' && /^22[0-9A-Z]{3}$/.test(sqlstate));
}

export class LmtpListener {
  private server: SMTPServer | null = null;
  private readonly allowed: BlockList;
  /** Mail being processed, so stop() can wait for it. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly o: LmtpListenerOptions) {
    this.allowed = allowList(o.allow);
  }

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
      maxClients: MAX_CLIENTS,
      logger: false,
      // Sessions still open at a stop are cut after this; the MTA offers their mail again.
      closeTimeout: 2000,
      onConnect: (session, callback) => {
        const ip = plainAddress(session.remoteAddress);
        if (this.allowed.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4')) return callback();
        this.o.logger.warn({ remoteAddress: session.remoteAddress }, 'lmtp client refused: not in ROOMCAST_LMTP_ALLOW');
        callback(reply(554, '5.7.1 not allowed to deliver here'));
      },
      onRcptTo: (address, _session, callback) => {
        if (parseInboundAddress(address.address, this.o.domain) === null) return callback(reply(550, '5.1.1 no such address'));
        callback();
      },
      onData: (stream, session, callback) => {
        const work = this.receive(stream, session).then(
          (answers) => callback(null, answers),
          (err: unknown) => callback(err as Error),
        );
        this.inFlight.add(work);
        void work.finally(() => this.inFlight.delete(work));
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
    this.o.logger.info({ host: this.o.host, port: this.port, allow: this.o.allow }, 'lmtp listener for inbound mail listening');
  }

  /**
   * Stops listening, then waits (at most STOP_WAIT_MS) for mail being processed, so its commit
   * is not cut off by the caller closing the pool next. Its answer may still be lost with its
   * connection: the MTA offers that mail again, and what it did is not done twice.
   */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, STOP_WAIT_MS);
    });
    await Promise.race([Promise.allSettled([...this.inFlight]), bound]);
    clearTimeout(timer);
    await closed;
  }

  /** One answer per recipient, in RCPT order (LMTP). */
  private async receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<(string | Error)[]> {
    const raw = await readCapped(stream, this.o.maxBytes);
    const recipients = session.envelope.rcptTo.map((r) => r.address);
    // rejectOversized: smtp-server answers 552 to every recipient whatever we say; this only skips the work.
    if (raw === null) return recipients.map(() => reply(552, '5.3.4 message too big'));
    let parsing: Promise<ParsedMail> | null = null;
    const mail: ReceivedMail = {
      envelopeFrom: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
      raw,
      headers: MailHeaders.read(raw),
      parsed: () =>
        (parsing ??= simpleParser(raw, PARSE_OPTIONS).catch((err: unknown) => {
          throw new UnparseableMailError(err);
        })),
    };
    const answers: (string | Error)[] = [];
    for (const recipient of recipients) answers.push(this.answer(await this.outcome(mail, recipient), recipient));
    return answers;
  }

  private async outcome(mail: ReceivedMail, recipient: string): Promise<Answer> {
    try {
      return await this.o.processor.process(mail, recipient);
    } catch (err) {
      if (err instanceof UnparseableMailError) return { outcome: 'refused', reason: 'unparseable', code: 550, text: '5.6.0 the message cannot be parsed' };
      const mapped = toAppError(err);
      if (mapped instanceof UnavailableError) return { outcome: 'deferred', reason: 'unavailable', text: '4.3.0 roomcast is unavailable; try again later' };
      if (deterministic(err, mapped)) {
        this.o.logger.warn({ err: (err as Error).message, code: mapped.code }, 'inbound mail refused: it fails the same way every time');
        return { outcome: 'refused', reason: 'invalid', code: 550, text: `5.6.0 roomcast cannot take this mail: ${mapped.status < 500 ? mapped.message : 'its content cannot be stored'}` };
      }
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
