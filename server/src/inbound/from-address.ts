/**
 * Who a mail says it is from, read strictly. The From must be the token's user's verified address
 * (inbound-processor.ts), so everything a forger could use to make one mail name two addresses is
 * refused rather than guessed at: a second From line, two mailboxes, a group, a source route
 * (`<@evil:v@x>`), a second `@` (`"a" <v@x>@evil`), text after the angle brackets. mailparser is
 * lenient with all of these, which is right for showing a mail and wrong for trusting one.
 *
 * Addresses are compared with ASCII-only case folding: `K` and `k` are one letter, but U+212A
 * KELVIN SIGN (which `toLowerCase` turns into `k`) is not, and every other non-ASCII character
 * must be the stored one, byte for byte.
 *
 * Optionally (ROOMCAST_INBOUND_AUTHSERV_ID) the MTA in front must vouch for the From with DMARC:
 * an `Authentication-Results` header of its own saying `dmarc=pass` for the domain of the user's
 * address. Without it anyone who knows a reply address can post as its user by forging the From,
 * and infra's development Exim checks no SPF, DKIM or DMARC (docs/inbound-mail.md).
 */
import type { MailHeaders } from './mail-headers';

/** `A`-`Z` to `a`-`z`, nothing else. */
export const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

/** Whether two addresses are one, folding the case of ASCII letters only. */
export const sameAddress = (a: string, b: string): boolean => asciiLower(a) === asciiLower(b);

/** The domain of an address, ASCII lower case. */
export const domainOf = (address: string): string => asciiLower(address.slice(address.lastIndexOf('@') + 1));

interface Scanned {
  /** The value with each comment replaced by a space; quoted strings kept. */
  text: string;
  /** Where `<`, `>`, `@`, `,`, `;` and `:` stand in `text` outside quoted strings. */
  specials: { char: string; at: number }[];
}

const STRUCTURAL = new Set(['<', '>', '@', ',', ';', ':']);

/** One pass over a header value: comments out, quoted strings skipped; null when either is left open. */
function scan(value: string): Scanned | null {
  let text = '';
  const specials: Scanned['specials'] = [];
  let comment = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (quoted) {
      if (c === '\\') {
        text += c + (value[i + 1] ?? '');
        i++;
        continue;
      }
      if (c === '"') quoted = false;
      text += c;
    } else if (comment > 0) {
      if (c === '\\') i++;
      else if (c === '(') comment++;
      else if (c === ')') comment--;
    } else if (c === '(') {
      comment = 1;
      text += ' ';
    } else if (c === ')') {
      return null;
    } else {
      if (c === '"') quoted = true;
      else if (STRUCTURAL.has(c)) specials.push({ char: c, at: text.length });
      text += c;
    }
  }
  return quoted || comment > 0 ? null : { text, specials };
}

/** Longer than any real From (a header line is at most 998 characters); refused unread. */
const MAX_FROM_CHARS = 2000;
/** Longer than any real Authentication-Results, even with many results; skipped unread. */
const MAX_RESULTS_CHARS = 8000;

/** An addr-spec without quoted parts, comments or spaces: `local@domain`. */
const ADDR_SPEC = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+$/;

/**
 * The one address of a From value (`Name <a@x>`, `a@x`, `a@x (Name)`), or null unless it names
 * exactly one mailbox in one unambiguous way.
 */
export function parseMailbox(value: string): string | null {
  const s = value.length > MAX_FROM_CHARS ? null : scan(value);
  if (s === null) return null;
  const count = (c: string): number => s.specials.filter((x) => x.char === c).length;
  if (count(',') + count(';') + count(':') > 0 || count('@') !== 1) return null;
  const lt = s.specials.find((x) => x.char === '<')?.at;
  const gt = s.specials.find((x) => x.char === '>')?.at;
  let address: string;
  if (count('<') === 0 && count('>') === 0) {
    address = s.text.trim();
  } else {
    if (count('<') !== 1 || count('>') !== 1 || lt === undefined || gt === undefined || gt < lt) return null;
    if (s.text.slice(gt + 1).trim() !== '') return null;
    address = s.text.slice(lt + 1, gt).trim();
  }
  return ADDR_SPEC.test(address) ? address : null;
}

/** The address of the mail's one From line; null when there is not exactly one, or it is not one mailbox. */
export function fromAddress(headers: MailHeaders): string | null {
  const values = headers.all('from');
  return values.length === 1 ? parseMailbox(values[0] as string) : null;
}

/**
 * Whether the MTA named `authservId` says DMARC passed for `domain`. Only the first
 * Authentication-Results header with that id counts: the MTA prepends its own above whatever the
 * sender wrote (and should strip those), so a forged one further down is never read. Comments
 * are dropped first, so `dmarc=fail (dmarc=pass header.from=x)` is a fail.
 */
export function dmarcPassed(headers: MailHeaders, authservId: string, domain: string): boolean {
  for (const value of headers.all('authentication-results')) {
    const text = value.length > MAX_RESULTS_CHARS ? undefined : scan(value)?.text;
    if (text === undefined) continue;
    const [id = '', ...results] = text.split(';');
    if (asciiLower(id.trim().split(/\s+/)[0] ?? '') !== authservId) continue;
    return results.some((r) => /^\s*dmarc\s*=\s*pass(\s|$)/i.test(r) && asciiLower(/(?:^|\s)header\.from\s*=\s*"?([^\s;"]+)/i.exec(r)?.[1] ?? '') === domain);
  }
  return false;
}
