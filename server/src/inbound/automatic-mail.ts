/**
 * Mail no person wrote: auto-replies, list traffic, bounces, and our own mail coming back. Such
 * mail never posts and never gets an answer, so two robots can never answer each other for ever
 * (a vacation reply to a notification, a notification of that reply, …). RFC 3834 says how an
 * automatic responder marks its mail; the rest are what real responders are seen to send.
 */

/** Why a mail is automatic. */
export type AutomaticReason = 'null_sender' | 'auto_submitted' | 'precedence' | 'list' | 'autoreply_header' | 'loop';

export interface MailFacts {
  /** The envelope sender (MAIL FROM); empty for a bounce. */
  envelopeFrom: string;
  /** Header lookup by lower-case name: the first value, unfolded. */
  header: (name: string) => string | undefined;
  /** How many Received headers the mail carries. */
  receivedCount: number;
  /** The address of the mail's one From line as written (from-address.ts); null when there is not exactly one. */
  from: string | null;
}

/** More hops than any real path: the mail is going round in circles. */
const MAX_RECEIVED = 30;

/**
 * Why the mail is automatic, or null when a person sent it. `own` says whether an address is
 * one of roomcast's own (its From, or any address on the inbound domain), and `ownMessageId`
 * whether a Message-ID is one roomcast made: either means our own mail came back.
 */
export function automaticReason(m: MailFacts, own: { address: (a: string) => boolean; messageId: (id: string) => boolean }): AutomaticReason | null {
  if (m.envelopeFrom === '') return 'null_sender';
  const autoSubmitted = m.header('auto-submitted')?.trim().toLowerCase();
  if (autoSubmitted !== undefined && !/^no\b/.test(autoSubmitted)) return 'auto_submitted';
  if (/^\s*(bulk|junk|list)\b/i.test(m.header('precedence') ?? '')) return 'precedence';
  if (m.header('list-id') !== undefined) return 'list';
  // Set by responders that predate RFC 3834 (cPanel, some vacation programs).
  if (m.header('x-autoreply') !== undefined || m.header('x-autorespond') !== undefined) return 'autoreply_header';
  if (m.receivedCount > MAX_RECEIVED) return 'loop';
  if (own.address(m.envelopeFrom) || (m.from !== null && own.address(m.from))) return 'loop';
  const messageId = m.header('message-id');
  if (messageId !== undefined && own.messageId(messageId)) return 'loop';
  return null;
}
