/**
 * Where webhooks may go (SSRF): only https URLs whose host resolves to public addresses, every
 * one of them, so a URL cannot reach the app server's own network (Postgres, Redis, the broker's
 * management API, a cloud metadata service at 169.254.169.254). The check runs when an endpoint
 * is registered or changed, and again before every delivery, on the addresses the delivery then
 * connects to: a name that resolved to a public address at registration and to a private one now
 * (DNS rebinding) is refused at delivery too.
 *
 * `allowPrivate` (ROOMCAST_WEBHOOK_ALLOW_PRIVATE, tests and development) lifts both rules.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { AppError } from '../errors';

export type AddressKind = 'public' | 'loopback' | 'private' | 'link-local' | 'multicast' | 'unspecified' | 'reserved';

export interface TargetPolicy {
  allowPrivate: boolean;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has (as the system resolver does for a connect). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

/** A webhook URL or target that is refused: a 400 at registration, a failed attempt at delivery. */
export class WebhookTargetError extends AppError {
  override name = 'WebhookTargetError';
  constructor(code: 'webhook_url_invalid' | 'webhook_target_forbidden' | 'webhook_target_unresolvable', message: string, options?: { cause?: unknown }) {
    super(400, code, message, options);
  }
}

const MAX_URL_LENGTH = 2048;

type Rule = readonly [prefix: bigint, bits: number, kind: Exclude<AddressKind, 'public'>];

const v4 = (a: string): bigint => a.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);

// Most specific first is not needed: the ranges below do not overlap.
const V4_RULES: readonly (readonly [string, number, Exclude<AddressKind, 'public'>])[] = [
  ['0.0.0.0', 8, 'unspecified'], // "this network"; 0.0.0.0 itself reaches the local host
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'private'], // carrier-grade NAT
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'], // cloud metadata services live here
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // and 255.255.255.255, broadcast
];
const V4: readonly Rule[] = V4_RULES.map(([a, bits, kind]) => [v4(a) >> BigInt(32 - bits), bits, kind] as const);

/** The 128 bits of an IPv6 address (with or without a trailing dotted quad). */
function v6(address: string): bigint {
  let text = address.toLowerCase();
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad?.[1]) {
    const n = v4(quad[1]);
    text = `${text.slice(0, -quad[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

const inRange = (value: bigint, width: number, [prefix, bits]: Rule): boolean => value >> BigInt(width - bits) === prefix;

const V6_RULES: readonly (readonly [string, number, Exclude<AddressKind, 'public'>])[] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['fe80::', 10, 'link-local'],
  ['fc00::', 7, 'private'], // unique local
  ['fec0::', 10, 'private'], // site-local, deprecated
  ['ff00::', 8, 'multicast'],
  ['2001:db8::', 32, 'reserved'], // documentation
  ['2001::', 32, 'reserved'], // Teredo: tunnels to an address we cannot see
];
const V6: readonly Rule[] = V6_RULES.map(([a, bits, kind]) => [v6(a) >> BigInt(128 - bits), bits, kind] as const);

/** What kind of address `ip` is (IPv4 or IPv6); anything not plainly public is not `public`. */
export function classifyAddress(ip: string): AddressKind {
  const family = isIP(ip);
  if (family === 4) {
    const n = v4(ip);
    return V4.find((r) => inRange(n, 32, r))?.[2] ?? 'public';
  }
  if (family !== 6) return 'reserved';
  const n = v6(ip);
  const high96 = n >> 32n;
  const low32 = n & 0xffffffffn;
  const embedded = (x: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((x >> s) & 0xffn)).join('.');
  // Addresses that carry an IPv4 address reach that address: judge it.
  if (high96 === 0xffffn) return classifyAddress(embedded(low32)); // ::ffff:a.b.c.d, IPv4-mapped
  if (high96 === 0x64ff9b0000000000000000n) return classifyAddress(embedded(low32)); // 64:ff9b::a.b.c.d, NAT64
  if (n >> 112n === 0x2002n) {
    const kind = classifyAddress(embedded((n >> 80n) & 0xffffffffn)); // 2002:aabb:ccdd::, 6to4
    if (kind !== 'public') return kind;
  }
  const rule = V6.find((r) => inRange(n, 128, r));
  if (rule) return rule[2];
  // Only 2000::/3 is global unicast; the rest (including ::a.b.c.d, IPv4-compatible) is not for us.
  return n >> 125n === 1n ? 'public' : 'reserved';
}

/** Checks what can be checked without the network: a URL, http(s), no credentials, https unless allowed. */
export function parseTargetUrl(raw: string, policy: TargetPolicy): URL {
  if (raw.length > MAX_URL_LENGTH) throw new WebhookTargetError('webhook_url_invalid', `the URL is longer than ${MAX_URL_LENGTH} characters`);
  // The URL parser drops tabs and newlines and trims the rest: what is stored must be what is called.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]/.test(raw)) {
    throw new WebhookTargetError('webhook_url_invalid', 'the URL must not contain spaces or control characters');
  }
  if (!URL.canParse(raw)) throw new WebhookTargetError('webhook_url_invalid', 'the URL is not a valid absolute URL');
  const url = new URL(raw);
  if (url.protocol !== 'https:' && !(policy.allowPrivate && url.protocol === 'http:')) {
    throw new WebhookTargetError('webhook_url_invalid', `webhooks are sent over https only, not ${url.protocol.slice(0, -1)}`);
  }
  if (url.username || url.password) throw new WebhookTargetError('webhook_url_invalid', 'the URL must not carry a user name or password; authenticate the sender by its signature');
  if (url.hash) throw new WebhookTargetError('webhook_url_invalid', 'the URL must not have a #fragment');
  return url;
}

const hostOf = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * The addresses a delivery to `url` may connect to: all of the host's addresses, each public
 * (unless private targets are allowed). Throws a WebhookTargetError naming the first refused one.
 */
export async function resolveTarget(url: URL, policy: TargetPolicy, resolve: Resolver = systemResolver): Promise<ResolvedAddress[]> {
  const host = hostOf(url);
  const literal = isIP(host);
  let addresses: ResolvedAddress[];
  if (literal) addresses = [{ address: host, family: literal === 6 ? 6 : 4 }];
  else {
    try {
      addresses = await resolve(host);
    } catch (err) {
      throw new WebhookTargetError('webhook_target_unresolvable', `${host} does not resolve (${(err as { code?: string }).code ?? (err as Error).message})`, { cause: err });
    }
    if (addresses.length === 0) throw new WebhookTargetError('webhook_target_unresolvable', `${host} does not resolve to any address`);
  }
  if (policy.allowPrivate) return addresses;
  for (const a of addresses) {
    const kind = classifyAddress(a.address);
    if (kind !== 'public') {
      const via = literal ? '' : ` (${host} resolves to it)`;
      throw new WebhookTargetError('webhook_target_forbidden', `${a.address} is a ${kind} address${via}; webhooks go to public addresses only`);
    }
  }
  return addresses;
}
