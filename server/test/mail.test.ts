import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../../testkit/test-config';
import { makeUser, startHarness, type Harness, type TestRoom, type TestUser, makeRoom, uniqueName } from '../../testkit/harness';
import { eximQueueCount, mailHeader, readMailbox } from '../../testkit/mailbox';
import { waitFor } from '../../testkit/stomp';

let h: Harness;
let templatesDir: string;
const ADMIN_TOKEN = 'test-admin-token-0123456789';
// Fast retries and a reminder sweep every half second; reminders after the minimum, one hour.
const mailConfig = () =>
  testConfig({ ROOMCAST_MAIL_TEMPLATES_DIR: templatesDir, ROOMCAST_MAIL_RETRY_FIRST_MS: '300', ROOMCAST_REMINDER_INTERVAL_MS: '500', ROOMCAST_REMINDER_AFTER_HOURS: '1', ROOMCAST_ADMIN_TOKEN: ADMIN_TOKEN });

beforeAll(async () => {
  // A copy of the templates, so one test can edit them under a running server.
  templatesDir = await mkdtemp(path.join(tmpdir(), 'roomcast-templates-'));
  await cp(path.join(import.meta.dirname, '..', 'mail-templates'), templatesDir, { recursive: true });
  h = await startHarness({ config: mailConfig() });
});
afterAll(async () => {
  await h.close();
  await rm(templatesDir, { recursive: true, force: true });
});

/** A fresh address in the test domain; `prefix` picks Exim's test answers (tempfail…, reject…). */
const address = (prefix = 'rc'): string => `${prefix}-${randomBytes(5).toString('hex')}@example.test`;

/** Gives the user a verified address, as a completed address check does. */
async function withAddress(user: TestUser, email = address()): Promise<string> {
  await h.server.services.pool.query('UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1', [user.id, email]);
  return email;
}

async function roomWithAddresses(learners = 2): Promise<TestRoom & { emails: Map<string, string> }> {
  const room = await makeRoom(h, learners);
  const emails = new Map<string, string>();
  for (const u of [room.instructor, ...room.learners]) emails.set(u.id, await withAddress(u));
  return { ...room, emails };
}

const send = async (user: TestUser, roomId: string, body: Record<string, unknown>): Promise<{ id: string; seq: number }> => {
  const res = await user.api.post(`/api/rooms/${roomId}/messages`, { clientMsgId: uniqueName('m'), ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
};

const privateReply = (to: TestUser, text: string) => ({ audience: 'member', recipientId: to.id, kind: 'chat', body: { text } });
const announcement = (text: string, urgent = false) => ({ audience: 'everyone', kind: 'announcement', body: urgent ? { text, urgent } : { text } });

const mails = async (email: string): Promise<ParsedMail[]> => Promise.all(readMailbox(h.config, email).map((m) => simpleParser(m.raw)));

/** Resolves once the message's notify job has run: every mail it makes is queued by then. */
async function notified(messageId: string): Promise<void> {
  await waitFor(async () => {
    const { rows } = await h.server.services.pool.query(`SELECT state FROM jobs WHERE queue = 'notify' AND ref = $1`, [messageId]);
    return rows[0]?.state === 'done';
  }, `the notify job of ${messageId}`);
}

/**
 * Resolves once no mail job is pending (every queued mail is sent, failed or suppressed) and
 * Exim has delivered everything it accepted: what is not in a mailbox by then never will be.
 */
async function mailQueueDrained(): Promise<void> {
  await waitFor(async () => (await h.server.mail.mail.stats()).pending === 0, 'the mail queue to drain', 20_000);
  await waitFor(async () => (await eximQueueCount(h.config)) === 0, 'Exim to deliver what it accepted', 20_000);
}

describe('mail notifications', () => {
  it('mails an offline learner an instructor’s private reply once, as a complete MIME message with one-click unsubscribe', async () => {
    const room = await roomWithAddresses(1);
    const learner = room.learners[0]!;
    const email = room.emails.get(learner.id)!;
    // A Korean room and sender name: the subject header must carry them encoded, and decode back.
    await h.server.services.pool.query(`UPDATE rooms SET name = '한국어 수업' WHERE id = $1`, [room.id]);
    await h.server.services.pool.query(`UPDATE users SET display_name = '김선생' WHERE id = $1`, [room.instructor.id]);
    const text = 'Your essay is graded: 안녕하세요, well done <b>really</b>';
    const sent = await send(room.instructor, room.id, privateReply(learner, text));
    await waitFor(async () => readMailbox(h.config, email).length > 0, 'the mail in the learner’s mailbox');
    await notified(sent.id);
    await mailQueueDrained();
    const got = await mails(email);
    expect(got).toHaveLength(1);
    const mail = got[0]!;
    expect(mail.subject).toBe('김선생 wrote in 한국어 수업');
    // On the wire the header is RFC 2047 encoded words, never raw UTF-8.
    expect(readMailbox(h.config, email)[0]!.raw).toMatch(/^Subject: =\?UTF-8\?[BQ]\?/im);
    expect(mail.text).toContain(text);
    expect(mail.html).toContain('well done &lt;b&gt;really&lt;/b&gt;');
    expect(mail.html).toContain('안녕하세요');
    expect(mail.messageId).toMatch(/@roomcast\.localhost>$/);
    const raw = readMailbox(h.config, email)[0]!.raw;
    expect(mailHeader(raw, 'List-Unsubscribe')).toMatch(/^<https:\/\/.+\/api\/mail\/unsubscribe\?.+>$/);
    expect(mailHeader(raw, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
  });

  it('mails nobody who is online', async () => {
    const room = await roomWithAddresses(1);
    const learner = room.learners[0]!;
    expect((await learner.api.post(`/api/rooms/${room.id}/presence`, {})).status).toBe(204);
    const sent = await send(room.instructor, room.id, privateReply(learner, 'you are here'));
    await notified(sent.id);
    await mailQueueDrained();
    expect(readMailbox(h.config, room.emails.get(learner.id)!)).toHaveLength(0);
  });

  it('mails an instructors-only question to the instructors, and to no learner', async () => {
    const room = await roomWithAddresses(2);
    const second = await makeUser(h, 'instructor');
    expect((await second.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    const secondEmail = await withAddress(second);
    const text = `private question ${randomBytes(4).toString('hex')}`;
    const sent = await send(room.learners[0]!, room.id, { audience: 'instructors', kind: 'question', body: { text } });
    await notified(sent.id);
    await mailQueueDrained();
    for (const email of [room.emails.get(room.instructor.id)!, secondEmail]) {
      const got = await mails(email);
      expect(got.map((m) => m.text?.includes(text))).toEqual([true]);
    }
    for (const learner of room.learners) {
      const got = await mails(room.emails.get(learner.id)!);
      expect(got.filter((m) => m.text?.includes(text) || m.html?.toString().includes(text))).toEqual([]);
    }
  });

  it('collects a window’s events into one digest per person, however close together, and sends urgent ones at once', async () => {
    const room = await roomWithAddresses(1);
    const learner = room.learners[0]!;
    const email = room.emails.get(learner.id)!;
    expect((await learner.api.put(`/api/rooms/${room.id}/notifications`, { mode: 'hourly' })).body).toEqual({ mode: 'hourly' });
    // Ten announcements, the first two in the same instant.
    const texts = Array.from({ length: 10 }, (_, i) => `digest item ${i} ${randomBytes(3).toString('hex')}`);
    const first = await Promise.all(texts.slice(0, 2).map((t) => send(room.instructor, room.id, announcement(t))));
    const rest = [];
    for (const t of texts.slice(2)) rest.push(await send(room.instructor, room.id, announcement(t)));
    for (const m of [...first, ...rest]) await notified(m.id);
    const digests = await h.server.services.pool.query<{ id: number }>(
      `SELECT id FROM jobs WHERE queue = 'digest' AND payload->>'userId' = $1 AND payload->>'roomId' = $2`,
      [learner.id, room.id],
    );
    expect(digests.rows).toHaveLength(1);
    expect(readMailbox(h.config, email)).toHaveLength(0);

    // An urgent announcement does not wait for the window.
    const urgent = await send(room.instructor, room.id, announcement('fire drill now', true));
    await notified(urgent.id);
    await waitFor(async () => readMailbox(h.config, email).length === 1, 'the urgent announcement');

    // The window closes.
    await h.server.services.pool.query('UPDATE jobs SET run_at = now() WHERE id = $1', [digests.rows[0]!.id]);
    await waitFor(async () => readMailbox(h.config, email).length === 2, 'the digest', 20_000);
    const digest = (await mails(email)).find((m) => !m.text?.includes('fire drill now'))!;
    for (const t of texts) expect(digest.text).toContain(t);
    // The urgent one went on its own: the digest leaves it out.
    expect(digest.text).not.toContain('fire drill now');
  });

  it('unsubscribes with one POST and no login, after which no mail comes; a GET only asks', async () => {
    const room = await roomWithAddresses(1);
    const learner = room.learners[0]!;
    const email = room.emails.get(learner.id)!;
    await send(room.instructor, room.id, privateReply(learner, 'first'));
    await waitFor(async () => readMailbox(h.config, email).length === 1, 'the first mail');
    const url = new URL(mailHeader(readMailbox(h.config, email)[0]!.raw, 'List-Unsubscribe')!.slice(1, -1));
    // The link names the public https URL; this test reaches the app server directly.
    const local = `${h.server.url}${url.pathname}${url.search}`;
    const page = await fetch(local);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post"');
    // A browser may submit the page's form to us: the API's own policy (form-action 'none') would refuse it.
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self'");
    expect((await learner.api.get(`/api/rooms/${room.id}/notifications`)).body).toEqual({ mode: 'immediate' });
    const forged = await fetch(local.replace(/t=[^&]+/, 't=AAAA'), { method: 'POST' });
    expect(forged.status).toBe(400);
    expect((await forged.json()).error.code).toBe('invalid_link');

    const post = await fetch(local, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
    expect(post.status).toBe(200);
    expect((await learner.api.get(`/api/rooms/${room.id}/notifications`)).body).toEqual({ mode: 'off' });
    const after = await send(room.instructor, room.id, privateReply(learner, 'second'));
    await notified(after.id);
    await mailQueueDrained();
    expect(readMailbox(h.config, email)).toHaveLength(1);
  });
});

describe('mail choices', () => {
  it('are each member’s own: a stranger gets 403, no session 401, a mode that does not exist 400', async () => {
    const room = await makeRoom(h, 1);
    const stranger = await makeUser(h, 'learner');
    const path = `/api/rooms/${room.id}/notifications`;
    for (const res of [await stranger.api.get(path), await stranger.api.put(path, { mode: 'off' })]) {
      expect([res.status, res.body.error.code]).toEqual([403, 'not_a_member']);
    }
    expect((await h.api.get(path)).status).toBe(401);
    expect((await h.api.put(path, { mode: 'off' })).status).toBe(401);
    const learner = room.learners[0]!;
    for (const body of [{ mode: 'weekly' }, { mode: 'off', extra: 1 }, {}, { mode: 'x'.repeat(10_000) }]) {
      const res = await learner.api.put(path, body);
      expect([res.status, res.body.error.code], JSON.stringify(body).slice(0, 40)).toEqual([400, 'invalid_request']);
    }
    expect((await learner.api.get(path)).body).toEqual({ mode: 'immediate' });
    expect((await learner.api.get(`/api/rooms/not-a-room/notifications`)).status).toBe(404);
  });
});

describe('reminders', () => {
  it('reminds a learner away from a room once, from one server however many sweep, and again only after another visit', async () => {
    const second = await startHarness({ config: mailConfig() });
    try {
      const room = await roomWithAddresses(2);
      const [away, present] = room.learners as [TestUser, TestUser];
      const email = room.emails.get(away.id)!;
      const text = `missed announcement ${randomBytes(3).toString('hex')}`;
      // Both are online for the announcement, so only a reminder can mail it.
      for (const l of room.learners) expect((await l.api.post(`/api/rooms/${room.id}/presence`, {})).status).toBe(204);
      const sent = await send(room.instructor, room.id, announcement(text));
      await notified(sent.id);
      // Two hours pass for `away` (joined and never opened since); `present` opened the room just now.
      await h.server.services.pool.query(`UPDATE memberships SET joined_at = now() - interval '2 hours' WHERE room_id = $1`, [room.id]);
      await h.server.services.pool.query(`UPDATE messages SET created_at = now() - interval '1 hour' WHERE id = $1`, [sent.id]);
      expect((await present.api.get(`/api/rooms/${room.id}/messages`)).status).toBe(200);
      await waitFor(async () => readMailbox(h.config, email).length === 1, 'the reminder', 20_000);
      // Sweeps go on, on both servers: still one.
      await new Promise((r) => setTimeout(r, 2000));
      const got = await mails(email);
      expect(got).toHaveLength(1);
      expect(got[0]!.text).toContain(text);
      expect(readMailbox(h.config, room.emails.get(present.id)!)).toHaveLength(0);

      // Back in the room, then away for two hours again: one more reminder.
      expect((await away.api.get(`/api/rooms/${room.id}/messages`)).status).toBe(200);
      await notified((await send(room.instructor, room.id, announcement('another one'))).id);
      // Time moves for everything that happened: the reminder three hours ago, the visit two.
      await h.server.services.pool.query(
        `UPDATE room_visits SET reminded_at = now() - interval '3 hours', last_opened_at = now() - interval '2 hours' WHERE user_id = $1 AND room_id = $2`,
        [away.id, room.id],
      );
      await h.server.services.pool.query(`UPDATE messages SET created_at = now() - interval '1 hour' WHERE room_id = $1`, [room.id]);
      await waitFor(async () => readMailbox(h.config, email).length === 2, 'the second reminder', 20_000);
    } finally {
      await second.close();
    }
  });
});

describe('mail delivery', () => {
  it('retries a mail the relay defers (451) and delivers it', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const email = await withAddress(learner, address('flaky'));
    const sent = await send(room.instructor, room.id, privateReply(learner, 'deferred once'));
    await notified(sent.id);
    await waitFor(async () => readMailbox(h.config, email).length === 1, 'the mail after its retry', 20_000);
    const { rows } = await h.server.services.pool.query(`SELECT state, attempts, last_error FROM jobs WHERE queue = 'mail' AND ref = $1`, [
      `notify:${sent.id}:${learner.id}`,
    ]);
    expect(rows[0]).toMatchObject({ state: 'done', attempts: 2 });
    expect(rows[0].last_error).toMatch(/^451/);
  });

  it('fails a mail the relay refuses (550), suppresses the address and sends it nothing more', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const email = await withAddress(learner, address('reject'));
    const first = await send(room.instructor, room.id, privateReply(learner, 'refused'));
    await notified(first.id);
    await mailQueueDrained();
    const job = async (messageId: string) =>
      (await h.server.services.pool.query(`SELECT state, attempts, last_error FROM jobs WHERE queue = 'mail' AND ref = $1`, [`notify:${messageId}:${learner.id}`])).rows[0];
    expect(await job(first.id)).toMatchObject({ state: 'failed', attempts: 1 });
    expect((await job(first.id)).last_error).toMatch(/^550/);
    expect(await h.server.mail.store.isSuppressed(email)).toBe(true);
    // A suppressed address that is still verified gets no mail job at all.
    const second = await send(room.instructor, room.id, privateReply(learner, 'refused again'));
    await notified(second.id);
    expect(await job(second.id)).toBeUndefined();
  });

  it('uses an edited template for the next mail, and keeps the previous one when an edit is broken', async () => {
    const file = path.join(templatesDir, 'notification.liquid');
    const original = await readFile(file, 'utf8');
    const room = await roomWithAddresses(1);
    const learner = room.learners[0]!;
    const email = room.emails.get(learner.id)!;
    const touch = async (content: string, at: number): Promise<void> => {
      await writeFile(file, content);
      await utimes(file, at, at);
    };
    try {
      const marker = `edited-${randomBytes(3).toString('hex')}`;
      await touch(original.replace(/=== subject ===\n/, `=== subject ===\n${marker} `), Date.now() / 1000 + 1);
      await send(room.instructor, room.id, privateReply(learner, 'after a good edit'));
      await waitFor(async () => readMailbox(h.config, email).length === 1, 'the mail with the edited template');
      expect((await mails(email))[0]!.subject).toContain(marker);

      await touch(original.replace('=== html ===', '=== html ===\n{% if %}'), Date.now() / 1000 + 2);
      await send(room.instructor, room.id, privateReply(learner, 'after a broken edit'));
      await waitFor(async () => readMailbox(h.config, email).length === 2, 'the mail after the broken edit');
      const newest = (await mails(email)).find((m) => m.text?.includes('after a broken edit'))!;
      expect(newest.subject).toContain(marker);
      expect(h.server.mail.templates.problems().map((p) => p.type)).toEqual(['notification']);
    } finally {
      await touch(original, Date.now() / 1000 + 3);
    }
  });

  it('shows operators the queues, failures and suppressions, only with the admin token, and lifts a suppression', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const email = await withAddress(learner, address('bounce'));
    const sent = await send(room.instructor, room.id, privateReply(learner, 'bounces'));
    await notified(sent.id);
    await mailQueueDrained();
    const admin = (token?: string) => fetch(`${h.server.url}/api/admin/mail`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await admin()).status).toBe(401);
    expect((await admin('not-the-admin-token-at-all')).status).toBe(401);
    const res = await admin(ADMIN_TOKEN);
    expect(res.status).toBe(200);
    const view = await res.json();
    expect(view.queues.map((q: { queue: string }) => q.queue)).toEqual(['mail', 'notify', 'digest', 'reminders']);
    expect(view.failures.find((f: { to: string }) => f.to === email)).toMatchObject({ type: 'notification', attempts: 1 });
    expect(view.suppressions.newest.map((x: { email: string }) => x.email)).toContain(email);
    const lift = (): Promise<Response> => fetch(`${h.server.url}/api/admin/mail/suppressions/${encodeURIComponent(email)}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect((await lift()).status).toBe(204);
    expect((await lift()).status).toBe(404);
    const metrics = await (await fetch(`${h.server.url}/metrics`)).text();
    expect(metrics).toMatch(/roomcast_mail_failures_total\{kind="permanent"\} [1-9]/);
    expect(metrics).toMatch(/roomcast_mail_sent_total\{type="notification"\} [1-9]/);
    expect(metrics).toMatch(/roomcast_jobs\{queue="mail",state="failed"\} [1-9]/);
  });
});
