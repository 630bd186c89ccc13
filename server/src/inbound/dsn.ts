/**
 * Delivery status notifications (RFC 3464): a `multipart/report; report-type=delivery-status`
 * whose `message/delivery-status` part holds one block of fields about the message, then one
 * block per recipient (`Final-Recipient`, `Action`, `Status`, `Diagnostic-Code`). Only the
 * recipient blocks matter here: a `failed` action with a 5.x.x status is a hard bounce, a 4.x.x
 * status (a `delayed` action, or a failure the reporter calls temporary) a soft one.
 *
 * Which address bounced is not read from here (a DSN's body says whatever its sender wants):
 * it is the one our bounces+ return path was issued for (mail/inbound-addresses.ts). The
 * report's recipient blocks and returned headers only have to agree with it, or the report is
 * not believed (inbound-processor.ts).
 */

export type BounceKind = 'hard' | 'soft';

export interface RecipientStatus {
  finalRecipient: string | null;
  originalRecipient: string | null;
  action: string;
  /** The enhanced status code, e.g. `5.1.1`. */
  status: string;
  diagnostic: string | null;
}

export interface DeliveryReport {
  recipients: RecipientStatus[];
  /** The worst outcome over the recipients; null when none failed or was delayed (e.g. `delivered`, `relayed`). */
  kind: BounceKind | null;
}

/** Splits a header-like block into fields (lower-case names), unfolding continuation lines. */
function fields(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) out.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return out;
}

/** `rfc822; a@b.example` (or `rfc822;<a@b.example>`) → `a@b.example`. */
const addressOf = (field: string | undefined): string | null =>
  field === undefined ? null : (field.split(';').at(-1)?.trim().replace(/^<(.*)>$/, '$1') ?? null);

/**
 * The recipient blocks of a `message/delivery-status` body, and the worst outcome among them;
 * with `about`, only the blocks whose final or original recipient it accepts.
 */
export function parseDeliveryStatus(body: string, about: (recipient: string | null) => boolean = () => true): DeliveryReport {
  const blocks = body.trim().split(/\r?\n[ \t]*\r?\n/);
  const recipients: RecipientStatus[] = [];
  // The first block is about the message; a block without Action is not about a recipient.
  for (const block of blocks.slice(1)) {
    const f = fields(block);
    const action = f.get('action')?.toLowerCase();
    const status = /^([245])\.\d{1,3}\.\d{1,3}/.exec(f.get('status') ?? '')?.[0];
    if (action === undefined || status === undefined) continue;
    const finalRecipient = addressOf(f.get('final-recipient'));
    const originalRecipient = addressOf(f.get('original-recipient'));
    if (!about(finalRecipient) && !about(originalRecipient)) continue;
    recipients.push({ finalRecipient, originalRecipient, action, status, diagnostic: f.get('diagnostic-code') ?? null });
  }
  let kind: BounceKind | null = null;
  for (const r of recipients) {
    if (r.action === 'failed' && r.status.startsWith('5')) kind = 'hard';
    else if ((r.action === 'failed' || r.action === 'delayed') && r.status.startsWith('4') && kind === null) kind = 'soft';
  }
  return { recipients, kind };
}

/**
 * The body of the first part of a raw report whose Content-Type matches `type`, or null when
 * there is none. Read from the raw mail because mailparser folds these parts into the text. The
 * part ends at the next MIME boundary line; base64 (which no MTA we know uses here, but the RFC
 * allows) is decoded.
 */
function partBody(raw: string, type: RegExp): string | null {
  const header = type.exec(raw);
  if (header === null) return null;
  const rest = raw.slice(header.index);
  const blank = /\r?\n\r?\n/.exec(rest);
  if (blank === null) return null;
  const headers = rest.slice(0, blank.index);
  const body = rest.slice(blank.index + blank[0].length).split(/\r?\n--/)[0] ?? '';
  return /^content-transfer-encoding:[ \t]*base64/im.test(headers) ? Buffer.from(body, 'base64').toString('utf8') : body;
}

/** The `message/delivery-status` part: one block about the message, then one per recipient. */
export const deliveryStatusPart = (raw: string): string | null => partBody(raw, /^content-type:[ \t]*message\/(?:global-)?delivery-status\b/im);

/**
 * The headers of the mail the report is about: a `text/rfc822-headers` part, or the header block
 * of a `message/rfc822` one (the whole mail returned).
 */
export function returnedHeadersPart(raw: string): string | null {
  const body = partBody(raw, /^content-type:[ \t]*(?:text\/rfc822-headers|message\/(?:global|rfc822))\b/im);
  return body === null ? null : (body.split(/\r?\n\r?\n/)[0] ?? '');
}
