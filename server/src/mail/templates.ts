/**
 * Mail templates (docs/mail-templates.md): one Liquid file per mail type, edited in place while
 * the server runs. Liquid because it escapes every HTML output by default and, unlike eta,
 * cannot run JavaScript; includes are refused, so a template can read nothing but its variables.
 * Every version is checked before it is used, so a broken edit never reaches a mailbox: at start
 * it stops the server, later it is refused and the last good version keeps sending.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Liquid, type TagToken, type Template } from 'liquidjs';
import type { Logger } from '../logger';
import { MAIL_TYPES, type MailItem, type MailType, type MailVars } from './mail-job';

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

/** One broken template: which type, which file, why. */
export interface TemplateFault {
  type: MailType;
  file: string;
  reason: string;
}

/** A template that cannot be used: broken at load (every broken file at once), or failing to render a mail. */
export class TemplateError extends Error {
  override name = 'TemplateError';
  readonly code = 'template_invalid';
  constructor(
    readonly faults: readonly TemplateFault[],
    options?: { cause?: unknown },
  ) {
    super(
      faults.map((f) => `mail template ${f.file} (${f.type}): ${f.reason}`).join('; '),
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
  }
}

/** An edit that was refused and is still in the file; the previous version is in use. */
export interface TemplateProblem {
  type: MailType;
  file: string;
  error: string;
  /** ISO 8601: when the edit was refused. */
  at: string;
}

const PARTS = ['subject', 'text', 'html'] as const;
type Part = (typeof PARTS)[number];
type Compiled = Record<Part, Template[]>;

/**
 * What every check renders. Urgent items, a count above the items shown and non-empty lists, so
 * the branches templates are likely to have are rendered at least once.
 */
const URGENT_ITEM: MailItem = { kind: 'announcement', senderName: 'Dr. Kim', text: 'The exam moves to room 204.', createdAt: '2025-03-04T09:15:00Z', urgent: true };
const CHAT_ITEM: MailItem = { kind: 'question', senderName: 'Minji', text: 'Is chapter 3 included?\nThanks!', createdAt: '2025-03-04T09:20:00Z', urgent: false };
const SAMPLE_ROOM = { name: 'Physics 101', url: 'https://roomcast.example/rooms/sample' };
const SAMPLE_UNSUBSCRIBE = 'https://roomcast.example/unsubscribe/sample';
const SAMPLE_COMMANDS = 'cmd+sample@roomcast.example';
const SAMPLES: { [T in MailType]: MailVars[T] } = {
  notification: { recipient: { name: 'Alex' }, room: SAMPLE_ROOM, message: URGENT_ITEM, unsubscribeUrl: SAMPLE_UNSUBSCRIBE, commandAddress: SAMPLE_COMMANDS, replyAudience: 'private' },
  digest: { recipient: { name: 'Alex' }, room: SAMPLE_ROOM, window: 'daily', items: [URGENT_ITEM, CHAT_ITEM], count: 3, unsubscribeUrl: SAMPLE_UNSUBSCRIBE },
  reminder: { recipient: { name: 'Alex' }, room: SAMPLE_ROOM, missed: 4, items: [URGENT_ITEM, CHAT_ITEM], unsubscribeUrl: SAMPLE_UNSUBSCRIBE },
  password_reset: { recipient: { name: 'Alex' }, resetUrl: 'https://roomcast.example/reset/sample', expiresMinutes: 30 },
  verify_email: { recipient: { name: 'Alex' }, verifyUrl: 'https://roomcast.example/verify/sample', expiresHours: 24 },
  webhook_disabled: {
    recipient: { name: 'Alex' },
    room: SAMPLE_ROOM,
    endpoint: { url: 'https://lms.example/hooks/roomcast', description: 'Grades sync' },
    reason: 'failing',
    failingSince: '2025-03-01T09:15:00Z',
    lastError: 'HTTP 503 Service Unavailable',
  },
  command_reply: { recipient: { name: 'Alex' }, room: SAMPLE_ROOM, asked: 'history', outcome: 'history', items: [URGENT_ITEM, CHAT_ITEM], mode: 'daily', commandAddress: SAMPLE_COMMANDS },
  announcement: {
    recipient: { name: 'Alex' },
    room: SAMPLE_ROOM,
    sender: { name: 'Dr. Kim' },
    announcement: { subject: 'No class on Friday', text: 'The building is closed on Friday.\nWe meet again on Monday.' },
    unsubscribeUrl: SAMPLE_UNSUBSCRIBE,
  },
};

/** Partials would let a template read files; mail templates are self-contained instead. */
const REFUSED_TAG: Parameters<Liquid['registerTag']>[1] = {
  parse(token: TagToken) {
    throw new Error(`{% ${token.name} %} is not allowed: mail templates cannot load other files`);
  },
  // Required by Liquid's tag interface; never reached, as parsing already failed.
  render: () => '',
};

function createEngine(escapeHtml: boolean): Liquid {
  const engine = new Liquid({
    // Lookups go to this empty map, never to the disk, should a loading tag ever get past REFUSED_TAG.
    templates: {},
    // A typo fails the check instead of mailing blanks.
    strictVariables: true,
    strictFilters: true,
    ...(escapeHtml ? { outputEscape: 'escape' as const } : {}),
    // Times read the same whatever the server's time zone and locale; templates label them UTC.
    timezoneOffset: 0,
    locale: 'en-US',
    // An edit with a runaway loop fails its check instead of holding up the server.
    renderLimit: 1000,
    memoryLimit: 1e8,
  });
  for (const tag of ['include', 'render', 'layout']) engine.registerTag(tag, REFUSED_TAG);
  return engine;
}

/** Subject and text are not HTML, so they are not escaped; the html part escapes every output. */
const PLAIN = createEngine(false);
const HTML = createEngine(true);
const ENGINE: Record<Part, Liquid> = { subject: PLAIN, text: PLAIN, html: HTML };

const MARKER = /^===\s*(\S+)\s*===\s*$/;

/**
 * Splits a file into its parts. Each part's source starts with as many newlines as lines precede
 * it, so Liquid's line numbers in errors are the file's; rendering trims them off again.
 */
function splitParts(source: string): Record<Part, string> {
  const lines = source.replace(/^\uFEFF/, '').split(/\r?\n/);
  const starts: { part: Part; line: number }[] = [];
  lines.forEach((line, index) => {
    const name = MARKER.exec(line)?.[1];
    if (name === undefined) return;
    const expected = PARTS[starts.length];
    if (name !== expected) {
      const wanted = expected === undefined ? 'no more parts after html' : `'=== ${expected} ==='`;
      throw new Error(`line ${index + 1}: '=== ${name} ===' where ${wanted} was expected (parts: subject, text, html, in this order)`);
    }
    starts.push({ part: expected, line: index });
  });
  const missing = PARTS.slice(starts.length).map((p) => `'=== ${p} ==='`);
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')} (parts: subject, text, html, in this order)`);
  const first = starts[0]?.line ?? 0;
  if (lines.slice(0, first).some((l) => l.trim() !== '')) throw new Error(`the file must start with '=== subject ===' (only blank lines may come before it)`);
  const parts = {} as Record<Part, string>;
  starts.forEach(({ part, line }, i) => {
    const end = starts[i + 1]?.line ?? lines.length;
    parts[part] = '\n'.repeat(line + 1) + lines.slice(line + 1, end).join('\n');
  });
  return parts;
}

/** The first variable path the sample does not have, in any branch of the template. */
function unknownVariable(part: Part, template: Template[], sample: object): string | undefined {
  for (const segments of ENGINE[part].globalVariableSegmentsSync(template)) {
    let value: unknown = sample;
    const walked: (string | number)[] = [];
    for (const segment of segments) {
      // A key computed from another variable: only rendering can tell.
      if (typeof segment !== 'string' && typeof segment !== 'number') break;
      walked.push(segment);
      value = property(value, segment);
      if (value === undefined) return walked.join('.');
    }
  }
  return undefined;
}

/** How Liquid reads a property: own properties, plus `size`, `first` and `last` of lists. */
function property(value: unknown, key: string | number): unknown {
  if (Array.isArray(value)) {
    if (key === 'first') return value[0];
    if (key === 'last') return value.at(-1);
  }
  if ((Array.isArray(value) || typeof value === 'string') && key === 'size') return value.length;
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, key)) return (value as Record<string | number, unknown>)[key];
  return undefined;
}

/** Throws with the reason when a part fails to parse, uses a variable its type lacks, or fails to render the sample. */
function compile(type: MailType, source: string): Compiled {
  const sources = splitParts(source);
  const compiled = {} as Compiled;
  for (const part of PARTS) {
    try {
      compiled[part] = ENGINE[part].parse(sources[part]);
    } catch (err) {
      throw new Error(`${part} part: ${messageOf(err)}`, { cause: err });
    }
    const unknown = unknownVariable(part, compiled[part], SAMPLES[type]);
    if (unknown !== undefined) throw new Error(`${part} part: unknown variable ${unknown} (the ${type} variables are in MailVars, server/src/mail/mail-job.ts)`);
  }
  renderParts(compiled, SAMPLES[type]);
  return compiled;
}

function renderParts(compiled: Compiled, vars: object): RenderedMail {
  const rendered = {} as Record<Part, string>;
  for (const part of PARTS) {
    try {
      rendered[part] = String(ENGINE[part].renderSync(compiled[part], vars));
    } catch (err) {
      throw new Error(`${part} part: ${messageOf(err)}`, { cause: err });
    }
  }
  // A line break in a subject would start a new header (Bcc:); other control characters garble it.
  const subject = rendered.subject.replace(/[\p{Cc}\p{Zl}\p{Zp}]/gu, ' ').replace(/\s+/gu, ' ').trim();
  const text = rendered.text.replace(/^\s*\n/u, '').trimEnd();
  const html = rendered.html.trim();
  if (subject === '') throw new Error('subject part: renders empty');
  if (text === '') throw new Error('text part: renders empty');
  if (html === '') throw new Error('html part: renders empty');
  return { subject, text: `${text}\n`, html: `${html}\n` };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * What identifies a version of a file without reading it. Compared for equality, not order, so a
 * deploy that restores an older mtime is noticed too; the size catches edits within one mtime tick.
 */
async function stampOf(file: string): Promise<string> {
  try {
    const s = await stat(file);
    return `${s.mtimeMs}:${s.size}`;
  } catch (err) {
    return `unreadable:${(err as { code?: unknown }).code ?? messageOf(err)}`;
  }
}

type Version = { stamp: string; compiled: Compiled } | { stamp: string; reason: string };

/** Stats before reading: a write after the stat changes the stamp, so the next render reads again. */
async function readVersion(type: MailType, file: string): Promise<Version> {
  const stamp = await stampOf(file);
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (err) {
    return { stamp, reason: `cannot read the file: ${messageOf(err)}` };
  }
  try {
    return { stamp, compiled: compile(type, source) };
  } catch (err) {
    return { stamp, reason: messageOf(err) };
  }
}

interface Entry {
  file: string;
  /** The last version that passed its check: what mails are rendered with. */
  compiled: Compiled;
  /** The version last read, whether it passed or was refused, so a refused one is not re-read on every mail. */
  stamp: string;
}

/** The checked templates of every mail type, each re-read when its file changes. */
export class MailTemplates {
  private readonly problemByType = new Map<MailType, TemplateProblem>();

  private constructor(
    private readonly entries: Record<MailType, Entry>,
    private readonly logger: Logger,
  ) {}

  /** Loads and checks every type; rejects with a TemplateError naming every broken file, so a server never starts with a broken set. */
  static async load(dir: string, logger: Logger): Promise<MailTemplates> {
    const versions = await Promise.all(
      MAIL_TYPES.map(async (type) => {
        const file = path.join(dir, `${type}.liquid`);
        return { type, file, version: await readVersion(type, file) };
      }),
    );
    const entries = {} as Record<MailType, Entry>;
    const faults: TemplateFault[] = [];
    for (const { type, file, version } of versions) {
      if ('reason' in version) faults.push({ type, file, reason: version.reason });
      else entries[type] = { file, compiled: version.compiled, stamp: version.stamp };
    }
    if (faults.length > 0) throw new TemplateError(faults);
    return new MailTemplates(entries, logger);
  }

  /**
   * Renders with the current template of `type`. If its file changed since it was last read, it
   * is re-read and checked first: a valid edit applies to this very mail; a broken one is refused
   * (logged, kept in problems()) and the previous version is used. Throws a TemplateError when
   * these vars fail to render (the check used the sample).
   */
  async render<T extends MailType>(type: T, vars: MailVars[T]): Promise<RenderedMail> {
    const entry = await this.refreshed(type);
    try {
      return renderParts(entry.compiled, vars);
    } catch (err) {
      throw new TemplateError([{ type, file: entry.file, reason: messageOf(err) }], { cause: err });
    }
  }

  /** The refused edits still in place, for the admin API; empty when all is well. */
  problems(): TemplateProblem[] {
    return [...this.problemByType.values()].map((p) => ({ ...p }));
  }

  private async refreshed(type: MailType): Promise<Entry> {
    const entry = this.entries[type];
    const before = entry.stamp;
    if ((await stampOf(entry.file)) === before) return entry;
    const version = await readVersion(type, entry.file);
    // Another render read a version meanwhile; its outcome stands, whichever read finished first.
    if (entry.stamp !== before) return entry;
    entry.stamp = version.stamp;
    if ('reason' in version) {
      this.problemByType.set(type, { type, file: entry.file, error: version.reason, at: new Date().toISOString() });
      this.logger.error({ type, file: entry.file, reason: version.reason }, 'mail template edit refused; the previous version stays in use');
    } else {
      entry.compiled = version.compiled;
      if (this.problemByType.delete(type)) this.logger.info({ type, file: entry.file }, 'mail template fixed; its edit is in use');
      else this.logger.info({ type, file: entry.file }, 'mail template reloaded');
    }
    return entry;
  }
}
