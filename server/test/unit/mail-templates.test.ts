import { cp, mkdtemp, readFile, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAIL_TYPES, type MailItem, type MailType, type MailVars } from '../../src/mail/mail-job';
import { MailTemplates, TemplateError } from '../../src/mail/templates';

const REAL_TEMPLATES = fileURLToPath(new URL('../../mail-templates/', import.meta.url));

const item = (over: Partial<MailItem> = {}): MailItem => ({
  kind: 'chat',
  senderName: 'Jordan Lee',
  text: 'See you at the lab at three.',
  createdAt: '2025-05-06T14:30:00Z',
  urgent: false,
  ...over,
});
const room = { name: 'Organic Chemistry', url: 'https://roomcast.test/rooms/r-42' };
const unsubscribeUrl = 'https://roomcast.test/unsubscribe/tok-9';
const commandAddress = 'cmd+abcdefghijklmnopqrstuvwxyz234567@roomcast.test';

const VARS: { [T in MailType]: MailVars[T] } = {
  notification: { recipient: { name: 'Sam' }, room, message: item({ kind: 'announcement', urgent: true, text: 'Quiz moved to Friday.' }), unsubscribeUrl, commandAddress, replyAudience: 'everyone' },
  digest: {
    recipient: { name: 'Sam' },
    room,
    window: 'hourly',
    items: [item({ senderName: 'Ana', text: 'First point' }), item({ senderName: 'Ben', text: 'Second point', urgent: true })],
    count: 2,
    unsubscribeUrl,
  },
  reminder: { recipient: { name: 'Sam' }, room, missed: 7, items: [item({ senderName: 'Cleo', text: 'Anyone there?' })], unsubscribeUrl },
  password_reset: { recipient: { name: 'Sam' }, resetUrl: 'https://roomcast.test/reset/abc', expiresMinutes: 45 },
  verify_email: { recipient: { name: 'Sam' }, verifyUrl: 'https://roomcast.test/verify/xyz', expiresHours: 48 },
  webhook_disabled: {
    recipient: { name: 'Sam' },
    room,
    endpoint: { url: 'https://lms.test/hooks/rc', description: 'Gradebook <sync>' },
    reason: 'gone',
    failingSince: '2025-05-06T14:30:00Z',
    lastError: 'HTTP 410 Gone',
  },
  command_reply: {
    recipient: { name: 'Sam' },
    room,
    asked: 'Re: history',
    outcome: 'history',
    items: [item({ senderName: 'Dana', text: 'Lab report due <Friday>' })],
    mode: 'immediate',
    commandAddress,
  },
  announcement: {
    recipient: { name: 'Sam' },
    room,
    sender: { name: 'Jordan Lee' },
    announcement: { subject: 'Lab <closed> Friday', text: 'Bring your notes & goggles on Monday.' },
    unsubscribeUrl,
  },
};

/** What each rendered mail must show, in both its text and its html part. */
const SHOWS: { [T in MailType]: string[] } = {
  notification: ['Sam', 'Jordan Lee', 'Organic Chemistry', 'Quiz moved to Friday.', room.url, unsubscribeUrl, 'rgent', commandAddress, 'everyone in Organic Chemistry will see your reply'],
  digest: ['Sam', 'Ana', 'First point', 'Ben', 'Second point', '14:30', room.url, unsubscribeUrl],
  reminder: ['Sam', '7 unread messages', 'Cleo', 'Anyone there?', room.url, unsubscribeUrl],
  password_reset: ['Sam', 'https://roomcast.test/reset/abc', '45 minutes', 'ignore'],
  verify_email: ['Sam', 'https://roomcast.test/verify/xyz', '48 hours'],
  webhook_disabled: ['Sam', 'https://lms.test/hooks/rc', 'Organic Chemistry', '410 Gone', room.url],
  command_reply: ['Sam', 'Organic Chemistry', 'Dana', 'Lab report due', room.url, commandAddress],
  announcement: ['Sam', 'Jordan Lee', 'Organic Chemistry', room.url, unsubscribeUrl],
};

interface LogLine {
  level: number;
  msg: string;
  type?: string;
  file?: string;
  reason?: string;
}

let dir: string;
let logs: LogLine[];
const logger = () => pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
const fileOf = (type: MailType) => path.join(dir, `${type}.liquid`);
const load = () => MailTemplates.load(dir, logger());

/** Rewrites a template and moves its mtime on, so the edit is seen even within one millisecond. */
async function edit(type: MailType, change: (source: string) => string): Promise<void> {
  const file = fileOf(type);
  const before = await stat(file);
  await writeFile(file, change(await readFile(file, 'utf8')), 'utf8');
  await utimes(file, before.atime, new Date(before.mtimeMs + 10_000));
}
const setSubject = (subject: string) => (source: string) => source.replace(/=== subject ===\n[\s\S]*?\n=== text ===/, `=== subject ===\n${subject}\n=== text ===`);
const insertIntoHtml = (snippet: string) => (source: string) => source.replace('=== html ===\n', `=== html ===\n${snippet}\n`);

async function loadFailure(): Promise<TemplateError> {
  const err: unknown = await load().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TemplateError);
  return err as TemplateError;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'roomcast-mail-templates-'));
  await cp(REAL_TEMPLATES, dir, { recursive: true });
  logs = [];
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the real templates', () => {
  it.each(MAIL_TYPES)('render a %s mail with a subject and the content in both parts', async (type) => {
    const templates = await load();
    const mail = await templates.render(type, VARS[type]);
    expect(mail.subject.trim()).not.toBe('');
    for (const shown of SHOWS[type]) {
      expect(mail.text).toContain(shown);
      expect(mail.html).toContain(shown);
    }
    expect(templates.problems()).toEqual([]);
  });

  it('say who sees a reply to a notification: everyone in the room, or the sender and the instructors', async () => {
    const templates = await load();
    const open = await templates.render('notification', VARS.notification);
    const privately = await templates.render('notification', { ...VARS.notification, replyAudience: 'private' });
    for (const part of [open.text, open.html]) expect(part).toContain('everyone in Organic Chemistry will see your reply');
    for (const part of [privately.text, privately.html]) {
      expect(part).toContain('answer Jordan Lee privately: only they and the instructors of Organic Chemistry will see your reply');
      expect(part).not.toContain('everyone in');
    }
  });

  it('escape HTML in the html part and leave the text part as written', async () => {
    const templates = await load();
    const text = '<script>alert("hi")</script> & more';
    const mail = await templates.render('notification', { ...VARS.notification, message: item({ text }) });
    expect(mail.html).not.toContain('<script>');
    expect(mail.html).toContain('&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt; &amp; more');
    expect(mail.text).toContain(text);
  });

  it('keep a subject on one line whatever the variables hold', async () => {
    const templates = await load();
    const mail = await templates.render('notification', { ...VARS.notification, message: item({ senderName: 'Eve\r\nBcc: x@y\t\u0000\u2028 ' }) });
    expect(mail.subject).not.toMatch(/[\p{Cc}\u2028]/u);
    expect(mail.subject).toContain('Eve Bcc: x@y ');
  });

  it('keep Korean text intact in all three parts', async () => {
    await edit('notification', setSubject('새 메시지: {{ message.senderName }} ({{ room.name }})'));
    const templates = await load();
    const vars = { ...VARS.notification, room: { ...room, name: '물리학 강의실' }, message: item({ senderName: '김민지', text: '안녕하세요, 반갑습니다' }) };
    const mail = await templates.render('notification', vars);
    expect(mail.subject).toBe('새 메시지: 김민지 (물리학 강의실)');
    for (const part of [mail.text, mail.html]) {
      expect(part).toContain('안녕하세요, 반갑습니다');
      expect(part).toContain('김민지');
      expect(part).toContain('물리학 강의실');
    }
  });
});

describe('loading', () => {
  it.each([
    "{% include '../../../etc/passwd' %}",
    "{% render '/etc/passwd' %}",
    "{% layout '/etc/passwd' %}",
    "{% liquid\n include '/etc/passwd' %}",
    "{% if false %}{% include 'digest.liquid' %}{% endif %}",
  ])('refuses a template that tries to read a file: %s', async (snippet) => {
    await edit('notification', insertIntoHtml(snippet));
    const err = await loadFailure();
    expect(err.code).toBe('template_invalid');
    expect(err.faults).toEqual([{ type: 'notification', file: fileOf('notification'), reason: expect.stringMatching(/is not allowed: mail templates cannot load other files/) }]);
  });

  it('refuses an unknown variable even in a branch the sample does not take', async () => {
    await edit('password_reset', insertIntoHtml('{% if expiresMinutes > 100000 %}{{ recipient.nmae }}{% endif %}'));
    const err = await loadFailure();
    expect(err.faults).toEqual([{ type: 'password_reset', file: fileOf('password_reset'), reason: expect.stringContaining('unknown variable recipient.nmae') }]);
  });

  it('refuses a runaway loop instead of hanging', async () => {
    await edit('verify_email', insertIntoHtml('{% for i in (1..1000000000) %}x{% endfor %}'));
    const err = await loadFailure();
    expect(err.faults.map((f) => f.type)).toEqual(['verify_email']);
  });

  it('rejects with a TemplateError naming every broken file', async () => {
    await edit('digest', (s) => s.replace('=== html ===', '=== htm ==='));
    await edit('password_reset', setSubject('{{ resetUrl | shout }}'));
    await unlink(fileOf('verify_email'));
    const err = await loadFailure();
    expect(err.faults.map((f) => f.type)).toEqual(['digest', 'password_reset', 'verify_email']);
    for (const type of ['digest', 'password_reset', 'verify_email'] as const) expect(err.message).toContain(fileOf(type));
    expect(err.faults[1]?.reason).toMatch(/undefined filter: shout/);
  });
});

describe('editing a template while running', () => {
  it('applies a valid edit to the next render of the same instance', async () => {
    const templates = await load();
    expect((await templates.render('reminder', VARS.reminder)).subject).toBe('You have 7 unread messages in Organic Chemistry');
    await edit('reminder', setSubject('Still {{ missed }} waiting in {{ room.name }}'));
    expect((await templates.render('reminder', VARS.reminder)).subject).toBe('Still 7 waiting in Organic Chemistry');
    expect(templates.problems()).toEqual([]);
  });

  it.each([
    ['an unclosed tag', insertIntoHtml('{% if recipient.name %}'), /html part: tag \{% if recipient\.name %\} not closed, line:\d+/],
    ['an unknown variable', setSubject('Hello {{ recipient.nickname }}'), /subject part: unknown variable recipient\.nickname/],
    ['a missing html part', (s: string) => s.slice(0, s.indexOf('=== html ===')), /missing '=== html ==='/],
    ['an empty subject', setSubject('{% if false %}x{% endif %}'), /subject part: renders empty/],
  ])('refuses an edit with %s, keeps the previous version and reports it until fixed', async (_what, breakIt, reason) => {
    const templates = await load();
    const before = await templates.render('digest', VARS.digest);

    await edit('digest', breakIt);
    expect(await templates.render('digest', VARS.digest)).toEqual(before);
    expect(await templates.render('digest', VARS.digest)).toEqual(before);
    expect(templates.problems()).toEqual([{ type: 'digest', file: fileOf('digest'), error: expect.stringMatching(reason), at: expect.any(String) }]);
    const errors = logs.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1); // refused once, not re-read for every mail
    expect(errors[0]).toMatchObject({ type: 'digest', file: fileOf('digest'), reason: expect.stringMatching(reason) });

    await edit('digest', () => '=== subject ===\nFixed {{ count }}\n=== text ===\nT {{ room.name }}\n=== html ===\n<p>H {{ room.name }}</p>\n');
    expect(await templates.render('digest', VARS.digest)).toEqual({ subject: 'Fixed 2', text: 'T Organic Chemistry\n', html: '<p>H Organic Chemistry</p>\n' });
    expect(templates.problems()).toEqual([]);
  });

  it('keeps the previous version when the file disappears', async () => {
    const templates = await load();
    const before = await templates.render('verify_email', VARS.verify_email);
    await unlink(fileOf('verify_email'));
    expect(await templates.render('verify_email', VARS.verify_email)).toEqual(before);
    expect(templates.problems()).toEqual([expect.objectContaining({ type: 'verify_email', error: expect.stringContaining('ENOENT') })]);
  });
});

describe('rendering', () => {
  it('throws a TemplateError when the variables do not fit the template', async () => {
    const templates = await load();
    const vars = { recipient: { name: 'Sam' }, resetUrl: 'https://x' } as MailVars['password_reset'];
    const err: unknown = await templates.render('password_reset', vars).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemplateError);
    expect(err).toMatchObject({ code: 'template_invalid', faults: [{ type: 'password_reset', file: fileOf('password_reset'), reason: expect.stringMatching(/undefined variable: expiresMinutes/) }] });
  });
});
