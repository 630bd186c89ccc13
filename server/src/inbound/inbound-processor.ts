/**
 * What one received mail does for one of its recipients: post a reply, run a command, count a
 * bounce, or nothing. The LMTP listener (lmtp-server.ts) turns the outcome into its answer:
 * 250 once what the mail does is committed (or it was knowingly dropped), 451 when it should be
 * tried again later, 55x when it never can be.
 *
 * Who sent it is settled by two things, both needed: the address's token (its row names the user
 * and room) and the mail's From (the user's verified address). Mail that fails either, and mail
 * no person wrote (automatic-mail.ts), posts nothing and is answered by nobody: it is accepted
 * and dropped, so neither a forger nor a robot learns anything, and no bounce goes to a forged
 * sender.
 */
import { createHash } from 'node:crypto';
import type { ParsedMail } from 'mailparser';
import { INSTRUCTOR_KINDS, type SendMessageRequest } from '../../../shared/protocol/messages';
import type { AttemptLimiter } from '../auth/attempt-limiter';
import type { Pool } from '../db/pool';
import { AppError } from '../errors';
import { mailItem } from '../mail/concerns';
import type { MailChannel } from '../mail/mail-channel';
import { roomUrl } from '../mail/mail-links';
import type { SendMessage } from '../messages/send-message';
import { automaticReason, type AutomaticReason } from './automatic-mail';
import type { BounceStore } from './bounce-store';
import { deliveryStatusPart, parseDeliveryStatus } from './dsn';
import { parseInboundAddress, type AddressRefusal, type InboundAddresses, type InboundGrant } from '../mail/inbound-addresses';
import { parseCommand, type MailCommand } from './mail-commands';
import { stripQuotes } from './quote-strip';

/** Why a mail was accepted and dropped. */
export type DiscardReason = AutomaticReason | `${AddressRefusal}_address` | 'not_a_member' | 'from_mismatch' | 'already_posted' | 'not_a_report';

export type InboundOutcome =
  | { outcome: 'posted'; reason: 'new' | 'replayed'; messageId: string }
  | { outcome: 'command'; reason: MailCommand['name'] }
  | { outcome: 'bounce'; reason: 'hard' | 'soft' | 'soft_suppressed' | 'none' }
  | { outcome: 'discarded'; reason: DiscardReason }
  /** Never acceptable: answered 550 or 552 with `text`, and the sending MTA tells its sender. */
  | { outcome: 'refused'; reason: 'no_text' | 'too_long' | 'recipient_left'; code: 550 | 552; text: string }
  /** Not now: answered 451, and the MTA keeps the mail and offers it again later. */
  | { outcome: 'deferred'; reason: 'rate_limited'; text: string };

/** One mail as the listener received it. */
export interface ReceivedMail {
  /** MAIL FROM; empty for a bounce. */
  envelopeFrom: string;
  /** The mail as received (a DSN's status part is read from it). */
  raw: Buffer;
  parsed: ParsedMail;
}

export interface InboundProcessorOptions {
  pool: Pool;
  addresses: Pick<InboundAddresses, 'resolve'>;
  mail: Pick<MailChannel, 'store' | 'mail' | 'links' | 'addresses' | 'wakeSender'>;
  bounces: BounceStore;
  sendMessage: Pick<SendMessage, 'send'>;
  limiter: Pick<AttemptLimiter, 'attempt'>;
  /** The inbound domain, the domain of our Message-IDs, and our From address. */
  domain: string;
  messageIdDomain: string;
  ownFrom: string;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The first value of a header, unfolded, from the raw header lines (name in lower case). */
function headerOf(parsed: ParsedMail, name: string): string | undefined {
  const line = parsed.headerLines.find((h) => h.key === name)?.line;
  return line === undefined ? undefined : line.slice(line.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
}

/** The single From address, lower case; null when there is none or more than one. */
function fromAddress(parsed: ParsedMail): string | null {
  const values = parsed.from?.value ?? [];
  return values.length === 1 && values[0]?.address ? values[0].address.toLowerCase() : null;
}

/**
 * The send path's idempotency key for a mail: its Message-ID, hashed into the key's alphabet, so
 * a mail the MTA delivers twice (our 250 was lost) posts once. A mail without one is keyed by
 * what identifies its content, which a redelivery repeats byte for byte.
 */
export function clientMsgIdOf(parsed: ParsedMail): string {
  const id = parsed.messageId ?? `${headerOf(parsed, 'from') ?? ''}\n${headerOf(parsed, 'date') ?? ''}\n${parsed.subject ?? ''}\n${parsed.text ?? ''}`;
  return `mail:${sha256(id).slice(0, 40)}`;
}

/** `roomcast <no-reply@x>` → `no-reply@x`. */
const bareAddress = (a: string): string => (/<([^>]+)>/.exec(a)?.[1] ?? a).trim().toLowerCase();

export class InboundProcessor {
  private readonly ownFrom: string;

  constructor(private readonly o: InboundProcessorOptions) {
    this.ownFrom = bareAddress(o.ownFrom);
  }

  /** What the mail does for `recipient` (an address the listener accepted at RCPT). */
  async process(mail: ReceivedMail, recipient: string): Promise<InboundOutcome> {
    const parsedAddress = parseInboundAddress(recipient, this.o.domain);
    if (parsedAddress === null) return { outcome: 'discarded', reason: 'unknown_address' };
    const grant = await this.o.addresses.resolve(parsedAddress.purpose, parsedAddress.token);
    if (typeof grant === 'string') return { outcome: 'discarded', reason: `${grant}_address` };
    if (grant.purpose === 'bounce') return this.bounce(mail, grant);

    const automatic = automaticReason(
      {
        envelopeFrom: mail.envelopeFrom,
        header: (name) => headerOf(mail.parsed, name),
        receivedCount: mail.parsed.headerLines.filter((h) => h.key === 'received').length,
        from: fromAddress(mail.parsed),
      },
      {
        address: (a) => bareAddress(a) === this.ownFrom || bareAddress(a).endsWith(`@${this.o.domain}`),
        messageId: (id) => id.trim().toLowerCase().endsWith(`@${this.o.messageIdDomain}>`),
      },
    );
    if (automatic !== null) return { outcome: 'discarded', reason: automatic };

    const [member] = await this.o.mail.store.members(this.o.pool, grant.roomId, [grant.userId]);
    if (member === undefined) return { outcome: 'discarded', reason: 'not_a_member' };
    const from = fromAddress(mail.parsed);
    // The member's address is null unless verified and not suppressed: no From can match it then.
    if (from === null || member.email === null || member.email.toLowerCase() !== from) return { outcome: 'discarded', reason: 'from_mismatch' };

    const limited = await this.o.limiter.attempt(grant.userId, from);
    if (limited !== null) {
      return { outcome: 'deferred', reason: 'rate_limited', text: `4.7.1 too many mails from you; try again in ${limited.retryAfterSeconds} s` };
    }
    return grant.purpose === 'reply' ? this.reply(mail, grant, member.role) : this.command(mail, grant, { ...member, email: member.email });
  }

  private async reply(mail: ReceivedMail, grant: Extract<InboundGrant, { purpose: 'reply' }>, role: 'instructor' | 'learner'): Promise<InboundOutcome> {
    const text = stripQuotes(mail.parsed.text ?? '');
    if (text === '') return { outcome: 'refused', reason: 'no_text', code: 550, text: '5.6.0 nothing to post: the mail has no text above the quoted one (attachments are not posted)' };
    const { target } = grant;
    // A member who is no longer an instructor writes a chat instead of an instructor's kind.
    const kind = role !== 'instructor' && INSTRUCTOR_KINDS.includes(target.kind) ? 'chat' : target.kind;
    const req: SendMessageRequest = {
      clientMsgId: clientMsgIdOf(mail.parsed),
      audience: target.audience,
      ...(target.recipientId === null ? {} : { recipientId: target.recipientId }),
      kind,
      body: { text, via: 'email' },
    };
    try {
      const { message, replayed } = await this.o.sendMessage.send(grant.roomId, grant.userId, req);
      return { outcome: 'posted', reason: replayed ? 'replayed' : 'new', messageId: message.id };
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      switch (err.code) {
        case 'idempotency_conflict':
          // Posted before from this very mail, and stripped differently this time (a new release).
          return { outcome: 'discarded', reason: 'already_posted' };
        case 'body_too_large':
          return { outcome: 'refused', reason: 'too_long', code: 552, text: `5.3.4 the reply is too long for a room message: ${err.message}` };
        case 'recipient_not_found':
          return { outcome: 'refused', reason: 'recipient_left', code: 550, text: '5.1.6 the member you replied to has left the room; nothing was posted' };
        case 'room_not_found':
        case 'not_a_member':
          return { outcome: 'discarded', reason: 'not_a_member' };
        default:
          throw err;
      }
    }
  }

  /**
   * Runs the command and queues its answer (never sent from here: the mail sender sends it, with
   * retries). The mode change is idempotent and the answer's job ref names the incoming mail, so
   * a redelivered command changes nothing twice and is answered once.
   */
  private async command(
    mail: ReceivedMail,
    grant: Extract<InboundGrant, { purpose: 'command' }>,
    member: { id: string; role: 'instructor' | 'learner'; name: string; email: string },
  ): Promise<InboundOutcome> {
    const { store, links } = this.o.mail;
    const asked = (mail.parsed.subject ?? '').slice(0, 200);
    const command = parseCommand(asked);
    let items: ReturnType<typeof mailItem>[] = [];
    if (command.name === 'history') items = (await store.latestVisible(grant.roomId, member, command.count)).map(mailItem);
    if (command.name === 'mode') await store.setMode(member.id, grant.roomId, command.mode);
    const mode = await store.mode(member.id, grant.roomId);
    const roomName = (await store.roomName(grant.roomId)) ?? '';
    const commandAddress = await this.o.mail.addresses.commandAddress(this.o.pool, member.id, grant.roomId);
    await this.o.mail.mail.enqueue(this.o.pool, `command:${clientMsgIdOf(mail.parsed)}:${member.id}`, {
      to: member.email,
      type: 'command_reply',
      vars: {
        recipient: { name: member.name },
        room: { name: roomName, url: roomUrl(links, grant.roomId, member.role) },
        asked,
        outcome: command.name,
        items,
        mode,
        commandAddress,
      },
      ...(mail.parsed.messageId ? { inReplyTo: mail.parsed.messageId } : {}),
      autoSubmitted: 'auto-replied',
    });
    this.o.mail.wakeSender();
    return { outcome: 'command', reason: command.name };
  }

  /** A delivery status notification to the return path of mail to `grant.email`. */
  private async bounce(mail: ReceivedMail, grant: Extract<InboundGrant, { purpose: 'bounce' }>): Promise<InboundOutcome> {
    const type = mail.parsed.headers.get('content-type') as { value?: string; params?: Record<string, string> } | undefined;
    const part = type?.value === 'multipart/report' && type.params?.['report-type']?.toLowerCase() === 'delivery-status' ? deliveryStatusPart(mail.raw.toString('utf8')) : null;
    if (part === null) return { outcome: 'discarded', reason: 'not_a_report' };
    const report = parseDeliveryStatus(part);
    const worst = report.recipients.find((r) => r.status.startsWith(report.kind === 'hard' ? '5' : '4'));
    const why = `${worst?.status ?? ''} ${worst?.diagnostic ?? ''}`.trim();
    if (report.kind === 'hard') {
      await this.o.bounces.hard(grant.email, why);
      return { outcome: 'bounce', reason: 'hard' };
    }
    if (report.kind === 'soft') return { outcome: 'bounce', reason: (await this.o.bounces.soft(grant.email, why)) ? 'soft_suppressed' : 'soft' };
    return { outcome: 'bounce', reason: 'none' };
  }
}
