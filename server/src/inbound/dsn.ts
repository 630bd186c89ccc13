/**
 * Delivery status notifications (RFC 3464): a `multipart/report; report-type=delivery-status`
 * whose `message/delivery-status` part holds one block of fields about the message, then one
 * block per recipient (`Final-Recipient`, `Action`, `Status`, `Diagnostic-Code`). Only the
 * recipient blocks matter here: a `failed` action with a 5.x.x status is a hard bounce, a 4.x.x
 * status (a `delayed` action, or a failure the reporter calls temporary) a soft one.
 *
 * Which address bounced is not read from here (a DSN's body says whatever its sender wants):
 * it is the one our bounces+ return path was issued for (inbound-addresses.ts).
 */

export type BounceKind = 'hard' | 'soft';

export interface RecipientStatus {
  finalRecipient: string | null;
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

/** `rfc822; a@b.example` → `a@b.example`. */
const addressOf = (field: string | undefined): string | null => (field === undefined ? null : (field.split(';').at(-1)?.trim() ?? null));

/** The recipient blocks of a `message/delivery-status` body, and the worst outcome among them. */
export function parseDeliveryStatus(body: string): DeliveryReport {
  const blocks = body.trim().split(/\r?\n[ \t]*\r?\n/);
  const recipients: RecipientStatus[] = [];
  // The first block is about the message; a block without Action is not about a recipient.
  for (const block of blocks.slice(1)) {
    const f = fields(block);
    const action = f.get('action')?.toLowerCase();
    const status = /^([245])\.\d{1,3}\.\d{1,3}/.exec(f.get('status') ?? '')?.[0];
    if (action === undefined || status === undefined) continue;
    recipients.push({ finalRecipient: addressOf(f.get('final-recipient')), action, status, diagnostic: f.get('diagnostic-code') ?? null });
  }
  let kind: BounceKind | null = null;
  for (const r of recipients) {
    if (r.action === 'failed' && r.status.startsWith('5')) kind = 'hard';
    else if ((r.action === 'failed' || r.action === 'delayed') && r.status.startsWith('4') && kind === null) kind = 'soft';
  }
  return { recipients, kind };
}

const STATUS_PART = /^content-type:[ \t]*message\/(?:global-)?delivery-status\b/im;

/**
 * The body of the `message/delivery-status` part of a raw report, or null when there is none.
 * Read from the raw mail because mailparser folds that part into the text. The part ends at the
 * next MIME boundary line; base64 (which no MTA we know uses here, but the RFC allows) is decoded.
 */
export function deliveryStatusPart(raw: string): string | null {
  const header = STATUS_PART.exec(raw);
  if (header === null) return null;
  const rest = raw.slice(header.index);
  const blank = /\r?\n\r?\n/.exec(rest);
  if (blank === null) return null;
  const headers = rest.slice(0, blank.index);
  const body = rest.slice(blank.index + blank[0].length).split(/\r?\n--/)[0] ?? '';
  return /^content-transfer-encoding:[ \t]*base64/im.test(headers) ? Buffer.from(body, 'base64').toString('utf8') : body;
}
