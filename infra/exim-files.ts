/**
 * The files of roomcast's Exim: where they live under the data folder, the configuration
 * generated from `Config` (with the relay's test hooks), and the development Maildir every
 * message is delivered into, with what a person or a test needs to read it back.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../runtime/config';
import { dataPaths } from './paths';

/** Exim cannot be configured or its files cannot be read. */
export class EximError extends Error {
  override name = 'EximError';
  readonly code = 'exim_failed';
}

export interface EximPaths {
  /** Holds the configuration file and the spool. */
  dir: string;
  confFile: string;
  spoolDir: string;
  /** mainlog, rejectlog (every refused RCPT) and paniclog. */
  logDir: string;
  pidFile: string;
  /** The one Maildir (`new/`, `cur/`, `tmp/`) all mail is delivered into. */
  maildir: string;
  /** Flag files that switch the test hooks on while they exist (EXIM_HOOKS). */
  hooksDir: string;
}

/**
 * Test hooks a flag file switches on, so a test makes this real relay misbehave as a loaded one
 * does: `slow-down` answers every RCPT with 421 (the relay asks clients to slow down), `hold`
 * defers every delivery, so accepted mail piles up in Exim's queue as behind a dead next hop;
 * `refuse-sender` answers MAIL FROM with 550, as a relay that will not take our mail at all
 * (a blocked sending address, a refused login) does.
 */
export const EXIM_HOOKS = ['slow-down', 'hold', 'refuse-sender'] as const;
export type EximHook = (typeof EXIM_HOOKS)[number];

export function eximPaths(config: Config): EximPaths {
  const { exim, run, log, mail } = dataPaths(config);
  return {
    dir: exim,
    confFile: path.join(exim, 'exim.conf'),
    spoolDir: path.join(exim, 'spool'),
    logDir: path.join(log, 'exim'),
    pidFile: path.join(run, 'exim.pid'),
    maildir: path.join(mail, 'maildir'),
    hooksDir: path.join(exim, 'hooks'),
  };
}

/** The OS user and group Exim runs as after dropping root (and owns its spool, logs and mail). */
export interface EximUser {
  user: string;
  group: string;
}

/**
 * Exim expands most path options (`$`, `\`) and splits `log_file_path` at colons; rather than
 * quote for each, a data folder with such characters is refused up front.
 */
function assertPlainPath(p: string): string {
  if (/[\\$:"\n\r]/.test(p)) throw new EximError(`Exim cannot use ${JSON.stringify(p)}: move the data folder (ROOMCAST_DATA_DIR) to a path without \\ $ : or "`);
  return p;
}

/** Characters kept as they are in a recipient's tag; Exim's `sg` below and `maildirTag` agree on it. */
const TAG_KEEP = 'a-z0-9._+=@-';
const KEPT = new RegExp(`^[${TAG_KEEP}]$`);

/**
 * The suffix Exim gives a delivered file's name (`maildir_tag`), so a recipient's mail is found
 * from the directory listing alone: `,` and the address, lower-cased, with every byte outside
 * `[a-z0-9._+=@-]` (a Maildir's `:` and `/`, any UTF-8 byte) turned into `_`. Byte for byte
 * what `${sg{${lc:…}}{[^…]}{_}}` makes of it in the configuration.
 */
export function maildirTag(address: string): string {
  let tag = ',';
  for (const byte of Buffer.from(address, 'utf8')) {
    const c = byte >= 0x41 && byte <= 0x5a ? byte + 0x20 : byte; // Exim's lc is ASCII-only
    const ch = String.fromCharCode(c);
    tag += c < 0x80 && KEPT.test(ch) ? ch : '_';
  }
  return tag;
}

/** A local part roomcast receives at: `reply+`, `cmd+` or `bounces+` and a token (server/src/mail/inbound-addresses.ts). */
const INBOUND_LOCAL_PART = '^(?i)(reply|cmd|bounces)\\+[a-z2-7]{32}$';

function assertDomain(domain: string): string {
  if (!/^[a-z0-9.-]+$/i.test(domain)) throw new EximError(`Exim cannot route the inbound domain ${JSON.stringify(domain)}`);
  return domain;
}

/**
 * The app servers' LMTP listeners as a manualroute host list: `127.0.0.1::25026:127.0.0.1::25027`
 * (a colon inside a list item is doubled). They bind ROOMCAST_LMTP_HOST; one bound to every
 * interface is reached on loopback, where this Exim runs.
 */
function lmtpHosts(config: Config): string {
  const host = ['0.0.0.0', '::'].includes(config.inbound.lmtpHost) ? '127.0.0.1' : config.inbound.lmtpHost;
  if (host.includes(':')) throw new EximError(`infra's Exim reaches the LMTP listeners over IPv4 only, not ${host}`);
  const hosts = Array.from({ length: config.app.servers }, (_, i) => `${host}::${config.inbound.lmtpPort + i}`);
  return hosts.join(':');
}

/**
 * The configuration, rewritten before each start. A development relay: it listens on loopback
 * only, accepts mail for any domain and delivers all of it into one Maildir under the data
 * folder, so nothing ever leaves the machine.
 */
export function eximConfig(config: Config, p: EximPaths, owner: EximUser): string {
  const { host, port } = config.mail;
  const lines = [
    '# Written by infra/exim.ts before each start; edit infra/exim-files.ts, not this one.',
    '# The development relay: loopback only, every message for any domain into one Maildir,',
    '# except mail for the inbound domain, which goes to the app servers over LMTP.',
    'primary_hostname = localhost',
    `domainlist roomcast_inbound = ${assertDomain(config.inbound.domain)}`,
    `daemon_smtp_ports = ${port}`,
    `local_interfaces = <; ${host}`,
    `spool_directory = ${assertPlainPath(p.spoolDir)}`,
    `log_file_path = ${assertPlainPath(p.logDir)}/%slog`,
    `pid_file_path = ${assertPlainPath(p.pidFile)}`,
    // Started by root, the daemon keeps root only to bind and fork; receiving, queue runs and
    // every delivery run as this user. Not root: everything runs as us.
    `exim_user = ${owner.user}`,
    `exim_group = ${owner.group}`,
    'deliver_drop_privilege = true',
    'never_users = root',
    'keep_environment =',
    // No DNS or ident lookups of loopback clients, no STARTTLS (no certificate to offer).
    'host_lookup =',
    'rfc1413_hosts =',
    'tls_advertise_hosts =',
    // A port held by another process fails the start at once instead of retrying for minutes.
    'daemon_startup_retries = 0',
    // Deliver every message at once, however many a pooled connection sends (default: 10).
    'smtp_accept_queue_per_connection = 0',
    'log_selector = +subject +received_recipients',
    'ignore_bounce_errors_after = 1h',
    'timeout_frozen_after = 1d',
    'acl_smtp_rcpt = acl_check_rcpt',
    'acl_smtp_mail = acl_check_mail',
    '',
    'begin acl',
    '',
    // Test hooks, so the app's retry and suppression tests drive this real relay without any
    // fake server: a recipient whose local part starts with "tempfail" (any case) gets a 451
    // (try again later) at RCPT; one starting with "reject" or "bounce" a 550 (never again);
    // one starting with "flaky" a 451 the first time it is offered, then it is accepted (the
    // `seen` hints database remembers it for an hour). Each refusal is also written to rejectlog.
    'acl_check_mail:',
    `  deny    condition = \${if exists{${assertPlainPath(p.hooksDir)}/refuse-sender}}`,
    '          message   = 550 5.7.1 sender refused: roomcast test hook (the file hooks/refuse-sender exists)',
    '  accept',
    '',
    'acl_check_rcpt:',
    // roomcast's own addresses (docs/inbound-mail.md): an address of another shape is refused here,
    // so its sender's MTA, not we, tells them; the app checks the token after DATA. Before the
    // test hooks, which would take `bounces+…` for a "bounce…" recipient.
    '  deny    domains     = +roomcast_inbound',
    `          !local_parts = \\N${INBOUND_LOCAL_PART}\\N`,
    '          message     = 550 5.1.1 no such address',
    '  accept  domains     = +roomcast_inbound',
    `  defer   condition = \${if exists{${assertPlainPath(p.hooksDir)}/slow-down}}`,
    '          message   = 421 4.7.0 slow down: roomcast test hook (the file hooks/slow-down exists)',
    '  defer   condition = ${if match{$local_part}{\\N^(?i)flaky\\N}}',
    '          !seen     = 1h / key=flaky_${lc:$local_part@$domain}',
    '          message   = 451 4.3.0 temporarily refused: roomcast test hook (local part starts with "flaky"; accepted when offered again)',
    '  defer   condition = ${if match{$local_part}{\\N^(?i)tempfail\\N}}',
    '          message   = 451 4.3.0 temporarily refused: roomcast test hook (local part starts with "tempfail")',
    '  deny    condition = ${if match{$local_part}{\\N^(?i)(reject|bounce)\\N}}',
    '          message   = 550 5.1.1 refused: roomcast test hook (local part starts with "reject" or "bounce")',
    '  accept',
    '',
    'begin routers',
    '',
    // Over LMTP to the app servers, app server i on lmtpPort + i - 1: the next is tried when one
    // does not answer, and the message stays queued (retried per the rules below) when none does.
    // `hosts_randomize`: each delivery takes them in a new order, so inbound mail (and its
    // parsing) spreads over all of them instead of all landing on the first.
    // `self = send`: they listen on this host, which is not a loop, as they are not Exim.
    'roomcast_inbound:',
    '  driver = manualroute',
    '  domains = +roomcast_inbound',
    `  route_list = * ${lmtpHosts(config)}`,
    '  hosts_randomize',
    '  self = send',
    '  transport = roomcast_lmtp',
    '',
    // Test hook: every delivery onward is deferred while hooks/hold exists, so accepted mail piles
    // up in the queue as behind a dead next hop (mail to roomcast itself still goes, above).
    'hold_hook:',
    '  driver = redirect',
    `  condition = \${if exists{${assertPlainPath(p.hooksDir)}/hold}}`,
    '  allow_defer',
    '  data = :defer: held: roomcast test hook (the file hooks/hold exists)',
    '',
    // Test hook: accepted at RCPT, then failed by routing, so Exim itself mails a real delivery
    // status notification (multipart/report, 5.x.x) to the envelope sender: roomcast's bounces+ address.
    'test_hook_undeliverable:',
    '  driver = redirect',
    '  local_parts = \\N^(?i)undeliverable\\N',
    '  allow_fail',
    '  data = :fail: 550 5.1.1 roomcast test hook (local part starts with "undeliverable"): accepted, then bounced',
    '',
    'dev_maildir:',
    '  driver = accept',
    '  transport = dev_maildir',
    '',
    'begin transports',
    '',
    'roomcast_lmtp:',
    '  driver = smtp',
    '  protocol = lmtp',
    // Each host in the route names its port; this default only stands in for the "lmtp" service
    // name, which /etc/services lacks, so Exim would refuse the transport without it.
    `  port = ${config.inbound.lmtpPort}`,
    '  allow_localhost',
    '  hosts_avoid_tls = *',
    '',
    // One Maildir rather than one per recipient: Exim (4.94+) refuses a directory named from
    // the recipient (tainted data) but allows it in the file name's tag (see maildirTag).
    'dev_maildir:',
    '  driver = appendfile',
    `  directory = ${assertPlainPath(p.maildir)}`,
    '  maildir_format',
    `  maildir_tag = ,\${sg{\${lc:$local_part@$domain}}{\\N[^${TAG_KEEP}]\\N}{_}}`,
    '  create_directory',
    '  directory_mode = 0755',
    '  mode = 0644',
    `  user = ${owner.user}`,
    `  group = ${owner.group}`,
    '  envelope_to_add',
    '  return_path_add',
    '  delivery_date_add',
    '',
    'begin retry',
    '',
    // The daemon's queue runs (-q5s) retry a deferred message every 5 s for an hour.
    '*  *  F,1h,5s; F,1d,5m',
    '',
  ];
  return `${lines.join('\n')}\n`;
}

/** One delivered message: its file, and when Exim wrote it. */
export interface MaildirFile {
  file: string;
  deliveredAt: Date;
}

/** The file name without a mail reader's `:2,<flags>` (added when it moves a message to cur/). */
const baseName = (file: string): string => file.replace(/:2,[A-Za-z]*$/, '');

/**
 * Every message in the Maildir (`new/`, and `cur/` where a mail reader moves what it has shown),
 * newest first; with `address`, only that recipient's copies.
 */
export function maildirFiles(config: Config, address?: string): MaildirFile[] {
  const { maildir } = eximPaths(config);
  const tag = address === undefined ? null : maildirTag(address);
  const found: MaildirFile[] = [];
  for (const sub of ['new', 'cur']) {
    const dir = path.join(maildir, sub);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // nothing delivered yet
      throw err;
    }
    for (const name of names) {
      if (tag !== null && !baseName(name).endsWith(tag)) continue;
      const file = path.join(dir, name);
      try {
        found.push({ file, deliveredAt: statSync(file).mtime });
      } catch {
        // moved or removed since the listing (a mail reader, clearMailbox): not there any more
      }
    }
  }
  return found.sort((a, b) => b.deliveredAt.getTime() - a.deliveredAt.getTime() || b.file.localeCompare(a.file));
}

/** The header block of a message, unfolded: one entry per header line, in order. */
function headerLines(raw: string): string[] {
  const end = raw.search(/\r?\n\r?\n/);
  const block = end === -1 ? raw : raw.slice(0, end);
  return block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/);
}

/** The bytes of one RFC 2047 encoded word's text. */
function encodedWordBytes(encoding: string, text: string): Buffer {
  if (encoding.toUpperCase() === 'B') return Buffer.from(text, 'base64');
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (ch === '_') bytes.push(0x20);
    else if (ch === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(ch.charCodeAt(0) & 0xff);
  }
  return Buffer.from(bytes);
}

function decodeBytes(charset: string, bytes: Buffer): string {
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    return bytes.toString('latin1'); // an unknown charset: show something rather than nothing
  }
}

const ENCODED_WORD = /=\?([^?*]+)(?:\*[^?]*)?\?([BbQq])\?([^?]*)\?=/g;

/**
 * A header value with its RFC 2047 encoded words decoded. Adjacent words of one charset are
 * joined before decoding, since a sender may split a multi-byte character between them; the
 * whitespace between encoded words is dropped, as the RFC says.
 */
export function decodeHeaderValue(value: string): string {
  let out = '';
  let last = 0;
  let pending: { charset: string; bytes: Buffer[] } | null = null;
  const flush = (): void => {
    if (pending) out += decodeBytes(pending.charset, Buffer.concat(pending.bytes));
    pending = null;
  };
  for (const m of value.matchAll(ENCODED_WORD)) {
    const [word, charset = 'utf-8', encoding = 'B', text = ''] = m;
    const between = value.slice(last, m.index);
    const adjacent = pending !== null && /^[ \t]*$/.test(between);
    if (!adjacent) {
      flush();
      out += between;
    }
    const bytes = encodedWordBytes(encoding, text);
    if (pending !== null && pending.charset.toLowerCase() === charset.toLowerCase()) pending.bytes.push(bytes);
    else {
      flush();
      pending = { charset, bytes: [bytes] };
    }
    last = m.index + word.length;
  }
  flush();
  return out + value.slice(last);
}

/** The first header `name` of a raw message, unfolded and decoded; null when absent. */
export function mailHeader(raw: string, name: string): string | null {
  const prefix = `${name.toLowerCase()}:`;
  const line = headerLines(raw).find((l) => l.toLowerCase().startsWith(prefix));
  return line === undefined ? null : decodeHeaderValue(line.slice(prefix.length).trim());
}

/** What `tsx infra/cli.ts mail` shows of one message. */
export interface MailSummary extends MaildirFile {
  /** The envelope recipient Exim delivered this copy to (its `Envelope-to:`). */
  recipient: string;
  subject: string;
  /** The sender's `Date:` header as written. */
  date: string;
}

/** The newest `limit` messages with recipient, subject and date, reading only their headers. */
export function summarizeMaildir(config: Config, limit: number): { total: number; mails: MailSummary[] } {
  const files = maildirFiles(config);
  const mails = files.slice(0, limit).map((f): MailSummary => {
    let raw: string;
    try {
      raw = readFileSync(f.file, 'utf8');
    } catch (err) {
      throw new EximError(`cannot read ${f.file}: ${(err as Error).message}`, { cause: err });
    }
    return {
      ...f,
      recipient: mailHeader(raw, 'Envelope-to') ?? mailHeader(raw, 'To') ?? '(no recipient)',
      subject: mailHeader(raw, 'Subject') ?? '(no subject)',
      date: mailHeader(raw, 'Date') ?? f.deliveredAt.toISOString(),
    };
  });
  return { total: files.length, mails };
}
