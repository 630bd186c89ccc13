/**
 * What one received mail does for one of its recipients: post a reply, run a command, count a
 * bounce, or nothing. The LMTP listener (lmtp-server.ts) turns the outcome into its answer:
 * 250 once what the mail does is committed (or it was knowingly dropped), 451 when it should be
 * tried again later, 55x when it never can be.
 *
 * Who sent it is settled by two things, both needed: the address's token (its row names the user
 * and room) and the mail's From (the user's verified address, from-address.ts; with DMARC vouched
 * for by the MTA when ROOMCAST_INBOUND_AUTHSERV_ID is set). Mail that fails either, and mail no
 * person wrote (automatic-mail.ts), posts nothing and is answered by nobody: it is accepted and
 * dropped, so neither a forger nor a robot learns anything, and no bounce goes to a forged sender.
 *
 * Everything that decides whether the mail is worth reading comes from the envelope and the
 * header block (mail-headers.ts), in order of cost: the token, the headers, the member, the rate.
 * Only a mail that passes them all has its body parsed (`ReceivedMail.parsed`).
 */
import type { ParsedMail } from 'mailparser';
import { INSTRUCTOR_KINDS, type SendMessageRequest } from '../../../shared/protocol/messages';
import { inTransaction, type Pool } from '../db/pool';
import { AppError } from '../errors';
import { mailItem } from '../mail/concerns';
import { parseInboundAddress, sha256, type AddressRefusal, type InboundGrant } from '../mail/inbound-addresses';
import type { MailChannel } from '../mail/mail-channel';
import { roomUrl } from '../mail/mail-links';
import type { SendMessage } from '../messages/send-message';
import { automaticReason, type AutomaticReason } from './automatic-mail';
import type { BounceStore } from './bounce-store';
import { deliveryStatusPart, parseDeliveryStatus, returnedHeadersPart } from './dsn';
import { asciiLower, dmarcPassed, domainOf, fromAddress, sameAddress } from './from-address';
import type { InboundRate } from './inbound-rate';
import { MailHeaders, splitMail } from './mail-headers';
import { parseCommand, type MailCommand } from './mail-commands';
import { stripQuotes } from './quote-strip';

/** Why a mail was accepted and dropped. */
export type DiscardReason =
  | AutomaticReason
  | `${AddressRefusal}_address`
  | 'not_a_member'
  | 'from_mismatch'
  | 'not_authenticated'
  | 'already_posted'
  | 'not_a_report'
  | 'unverified_report';

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
  /** The mail as received (a DSN's parts are read from it). */
  raw: Buffer;
  headers: MailHeaders;
  /** The whole mail parsed; the listener parses it once, on the first call, for all recipients. */
  parsed: () => Promise<ParsedMail>;
}

export interface InboundProcessorOptions {
  pool: Pool;
  mail: Pick<MailChannel, 'store' | 'mail' | 'links' | 'addresses' | 'wakeSender'>;
  bounces: BounceStore;
  sendMessage: Pick<SendMessage, 'send'>;
  rate: Pick<InboundRate, 'count'>;
  /** The inbound domain, the domain of our Message-IDs, and our From address. */
  domain: string;
  messageIdDomain: string;
  ownFrom: string;
  /** When set, a reply or command needs this MTA's `Authentication-Results: …; dmarc=pass`. */
  authservId: string | null;
}

// A high surrogate not followed by a low one, or a low one not preceded by a high one (json-guard.ts's rule).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text a mail carries, made storable: U+0000 (which Postgres text cannot hold; `=00` in a
 * quoted-printable body is enough) and lone UTF-16 surrogates (jsonb refuses them; mailparser's
 * decoders turn them into U+FFFD today, which this does not rely on) are dropped. Refusing the
 * mail instead would bounce a person's reply for an invisible character.
 */
export const storableText = (s: string): string => s.replaceAll('\u0000', '').replace(LONE_SURROGATE, '');

/**
 * What identifies a mail for one of its addresses: the send path's idempotency key, the command
 * answer's job, and what the rate limit counts. Its Message-ID with the address row's id, so a
 * mail the MTA delivers twice (our 250 was lost) posts once, and one mail CC'd to two reply
 * addresses of one room posts to each thread. A mail without a valid Message-ID is keyed by what a
 * redelivery repeats byte for byte: its From, Date and Subject lines and its body.
 */
export function mailKey(grantId: string, mail: Pick<ReceivedMail, 'raw' | 'headers'>): string {
  const id = mail.headers.messageId();
  const lines = ['from', 'date', 'subject'].map((h) => `${mail.headers.first(h) ?? ''}\n`).join('');
  const identity = id ?? sha256(Buffer.concat([Buffer.from(lines), splitMail(mail.raw).body]));
  return `mail:${sha256(`${grantId}\n${identity}`).slice(0, 40)}`;
}

/** `roomcast <no-reply@x>` → `no-reply@x`. */
const bareAddress = (a: string): string => asciiLower((/<([^>]+)>/.exec(a)?.[1] ?? a).trim());

export class InboundProcessor {
  private readonly ownFrom: string;
  private readonly domain: string;
  private readonly messageIdSuffix: string;

  constructor(private readonly o: InboundProcessorOptions) {
    this.ownFrom = bareAddress(o.ownFrom);
    this.domain = asciiLower(o.domain);
    this.messageIdSuffix = `@${asciiLower(o.messageIdDomain)}>`;
  }

  /** Whether a Message-ID is one roomcast made. */
  private ours(messageId: string): boolean {
    return asciiLower(messageId.trim()).endsWith(this.messageIdSuffix);
  }

  /** What the mail does for `recipient` (an address the listener accepted at RCPT). */
  async process(mail: ReceivedMail, recipient: string): Promise<InboundOutcome> {
    const parsedAddress = parseInboundAddress(recipient, this.domain);
    if (parsedAddress === null) return { outcome: 'discarded', reason: 'unknown_address' };
    const grant = await this.o.mail.addresses.resolve(parsedAddress.purpose, parsedAddress.token);
    if (typeof grant === 'string') return { outcome: 'discarded', reason: `${grant}_address` };
    if (grant.purpose === 'bounce') return this.bounce(mail, grant);

    const from = fromAddress(mail.headers);
    const automatic = automaticReason(
      { envelopeFrom: mail.envelopeFrom, header: (name) => mail.headers.first(name), receivedCount: mail.headers.count('received'), from },
      {
        address: (a) => bareAddress(a) === this.ownFrom || bareAddress(a).endsWith(`@${this.domain}`),
        messageId: (id) => this.ours(id),
      },
    );
    if (automatic !== null) return { outcome: 'discarded', reason: automatic };

    const [member] = await this.o.mail.store.members(this.o.pool, grant.roomId, [grant.userId]);
    if (member === undefined) return { outcome: 'discarded', reason: 'not_a_member' };
    // The member's address is null unless verified and not suppressed: no From can match it then.
    if (from === null || member.email === null || !sameAddress(member.email, from)) return { outcome: 'discarded', reason: 'from_mismatch' };
    if (this.o.authservId !== null && !dmarcPassed(mail.headers, this.o.authservId, domainOf(member.email))) {
      return { outcome: 'discarded', reason: 'not_authenticated' };
    }

    const key = mailKey(grant.id, mail);
    const wait = await this.o.rate.count(grant.userId, key);
    if (wait !== null) return { outcome: 'deferred', reason: 'rate_limited', text: `4.7.1 too many mails from you; try again in ${wait} s` };
    const parsed = await mail.parsed();
    return grant.purpose === 'reply' ? this.reply(parsed, key, grant, member.role) : this.command(mail, parsed, key, grant, { ...member, email: member.email });
  }

  private async reply(parsed: ParsedMail, key: string, grant: Extract<InboundGrant, { purpose: 'reply' }>, role: 'instructor' | 'learner'): Promise<InboundOutcome> {
    const text = stripQuotes(storableText(parsed.text ?? ''));
    if (text === '') return { outcome: 'refused', reason: 'no_text', code: 550, text: '5.6.0 nothing to post: the mail has no text above the quoted one (attachments are not posted)' };
    const { target } = grant;
    // A member who is no longer an instructor writes a chat instead of an instructor's kind.
    const kind = role !== 'instructor' && INSTRUCTOR_KINDS.includes(target.kind) ? 'chat' : target.kind;
    const req: SendMessageRequest = {
      clientMsgId: key,
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
   * retries), in one transaction: a mode change is never committed without its answer. The mode
   * change is idempotent and the answer's job ref names the incoming mail, so a redelivered
   * command changes nothing twice and is answered once.
   */
  private async command(
    mail: ReceivedMail,
    parsed: ParsedMail,
    key: string,
    grant: Extract<InboundGrant, { purpose: 'command' }>,
    member: { id: string; role: 'instructor' | 'learner'; name: string; email: string },
  ): Promise<InboundOutcome> {
    const { store, links } = this.o.mail;
    const asked = storableText(parsed.subject ?? '').slice(0, 200);
    const command = parseCommand(asked);
    const items = command.name === 'history' ? (await store.latestVisible(grant.roomId, member, command.count)).map(mailItem) : [];
    const mode = command.name === 'mode' ? command.mode : await store.mode(member.id, grant.roomId);
    const roomName = (await store.roomName(grant.roomId)) ?? '';
    const messageId = mail.headers.messageId();
    await inTransaction(this.o.pool, async (tx) => {
      if (command.name === 'mode') await store.setMode(member.id, grant.roomId, command.mode, tx);
      const commandAddress = await this.o.mail.addresses.commandAddress(tx, member.id, grant.roomId);
      await this.o.mail.mail.enqueue(tx, `command:${key}:${member.id}`, {
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
        ...(messageId === null ? {} : { inReplyTo: messageId }),
        autoSubmitted: 'auto-replied',
      });
    });
    this.o.mail.wakeSender();
    return { outcome: 'command', reason: command.name };
  }

  /**
   * A delivery status notification to the return path of mail to `grant.email`. Anyone may mail
   * a bounces+ address they have seen (it is the Return-Path of every mail we send), so a report
   * counts only when it proves it is about our mail to that address: sent by an MTA (null
   * sender), returning the headers of a mail with one of our Message-IDs, and reporting on
   * that address. The status is then read from the recipient blocks about that address alone.
   */
  private async bounce(mail: ReceivedMail, grant: Extract<InboundGrant, { purpose: 'bounce' }>): Promise<InboundOutcome> {
    const type = mail.headers.first('content-type') ?? '';
    if (!/^multipart\/report\s*;/i.test(type) || !/;\s*report-type\s*=\s*"?delivery-status"?\s*(;|$)/i.test(type)) return { outcome: 'discarded', reason: 'not_a_report' };
    if (mail.envelopeFrom !== '') return { outcome: 'discarded', reason: 'unverified_report' };
    const raw = mail.raw.toString('utf8');
    const part = deliveryStatusPart(raw);
    if (part === null) return { outcome: 'discarded', reason: 'not_a_report' };
    const returned = returnedHeadersPart(raw);
    const returnedId = returned === null ? null : MailHeaders.read(Buffer.from(returned, 'utf8')).messageId();
    if (returnedId === null || !this.ours(returnedId)) return { outcome: 'discarded', reason: 'unverified_report' };
    const about = parseDeliveryStatus(part, (r) => r !== null && sameAddress(r, grant.email));
    if (about.recipients.length === 0) return { outcome: 'discarded', reason: 'unverified_report' };

    const worst = about.recipients.find((r) => r.status.startsWith(about.kind === 'hard' ? '5' : '4'));
    const why = `${worst?.status ?? ''} ${worst?.diagnostic ?? ''}`.trim();
    if (about.kind === 'hard') {
      await this.o.bounces.hard(grant.email, why);
      return { outcome: 'bounce', reason: 'hard' };
    }
    if (about.kind === 'soft') return { outcome: 'bounce', reason: (await this.o.bounces.soft(grant.email, why)) ? 'soft_suppressed' : 'soft' };
    return { outcome: 'bounce', reason: 'none' };
  }
}
