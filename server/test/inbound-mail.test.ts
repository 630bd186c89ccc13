/**
 * Inbound mail end to end: real notification mails from the Maildir, answered with real client
 * fixtures sent by swaks through the real Exim, which hands them to the app server's LMTP
 * listener; real DSNs Exim makes itself. A few limits are checked by talking LMTP directly.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eximPaths } from '../../infra/exim-files';
import type { RoomMessage } from '../../shared/protocol/messages';
import { exchangeDestination, roomAllKey } from '../../shared/protocol/routing';
import { makeRoom, makeUser, startHarness, uniqueName, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';
import { eximQueueCount, mailHeader, readMailbox } from '../../testkit/mailbox';
import { connectStomp, subscribeWithReceipt, waitFor, webStompUrl, type StompSession } from '../../testkit/stomp';
import { testConfig } from '../../testkit/test-config';
import { fillFixture, REPLY_FIXTURES } from './fixtures/inbound/replies';

const MAX_PER_HOUR = 10;

let h: Harness;
const sessions: StompSession[] = [];

beforeAll(async () => {
  h = await startHarness({ config: testConfig({ ROOMCAST_INBOUND_MAX_PER_HOUR: String(MAX_PER_HOUR), ROOMCAST_MAIL_RETRY_FIRST_MS: '300' }), inboundMail: true });
});
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.disconnect()));
  await h?.close();
});

const address = (prefix = 'rc'): string => `${prefix}-${randomBytes(5).toString('hex')}@example.test`;
const messageId = (): string => `<${randomBytes(8).toString('hex')}@mail.example.test>`;

async function withAddress(user: TestUser, email = address()): Promise<string> {
  await h.server.services.pool.query('UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1', [user.id, email]);
  return email;
}

const send = async (user: TestUser, roomId: string, body: Record<string, unknown>): Promise<{ id: string }> => {
  const res = await user.api.post(`/api/rooms/${roomId}/messages`, { clientMsgId: uniqueName('m'), ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
};

/** The newest mail delivered to `email` once there are `count`, parsed, with its raw text. */
async function nthMail(email: string, count: number): Promise<{ raw: string; parsed: ParsedMail }> {
  await waitFor(() => readMailbox(h.config, email).length >= count, `mail number ${count} to ${email}`, 20_000);
  const raw = readMailbox(h.config, email)[0]!.raw;
  return { raw, parsed: await simpleParser(raw) };
}

/** Sends a raw mail through Exim's SMTP port with swaks, as any mail client's server would. */
async function swaks(o: { from: string; to: string; data: string }): Promise<{ ok: boolean; output: string }> {
  const args = ['--server', h.config.mail.host, '--port', String(h.config.mail.port), '--from', o.from, '--to', o.to, '--data', '-', '--hide-informational'];
  return new Promise((resolve) => {
    const child = execFile('swaks', args, (err, stdout, stderr) => resolve({ ok: err === null, output: `${stdout}${stderr}` }));
    child.stdin?.end(o.data);
  });
}

/** How many mails the LMTP listener has answered with this outcome (and reason). */
async function inbound(outcome: string, reason?: string): Promise<number> {
  const metric = await h.server.services.metrics.inboundMail.get();
  return metric.values.filter((v) => v.labels.outcome === outcome && (reason === undefined || v.labels.reason === reason)).reduce((n, v) => n + v.value, 0);
}

/** Resolves once the listener has answered `n` more mails with this outcome than `before`. */
async function answered(outcome: string, reason: string, before: number, n = 1): Promise<void> {
  await waitFor(async () => (await inbound(outcome, reason)) >= before + n, `${n} inbound mail(s) ${outcome}/${reason}`, 30_000);
}

async function messagesOf(user: TestUser, roomId: string): Promise<RoomMessage[]> {
  const res = await user.api.get(`/api/rooms/${roomId}/messages?limit=500`);
  expect(res.status).toBe(200);
  return res.body.messages;
}

async function stompAs(user: TestUser): Promise<StompSession> {
  const token = await user.api.post('/api/broker-token');
  const s = await connectStomp(webStompUrl(h.config), token.body.login, token.body.passcode);
  sessions.push(s);
  return s;
}

/** A reply to `notification` from a fixture, filled in as its client would. */
const replyTo = (file: string, notification: string, from: string, id = messageId()): { to: string; data: string; id: string } => {
  const to = mailHeader(notification, 'Reply-To')!;
  return { to, id, data: fillFixture(file, { from, to, messageId: id, inReplyTo: mailHeader(notification, 'Message-ID')! }) };
};

interface Setup extends TestRoom {
  email: string;
  notification: string;
}

/** A room whose first learner has an address and has been mailed an announcement. */
async function announced(learners = 2): Promise<Setup> {
  const room = await makeRoom(h, learners);
  const email = await withAddress(room.learners[0]!);
  await send(room.instructor, room.id, { audience: 'everyone', kind: 'announcement', body: { text: `Problem set 2 is due on Friday ${randomBytes(3).toString('hex')}` } });
  return { ...room, email, notification: (await nthMail(email, 1)).raw };
}

describe('replies by mail', () => {
  it('posts a reply to a real notification from each client once, without its quote, and live subscribers get it', async () => {
    const room = await announced(2);
    const [author, watcher] = room.learners as [TestUser, TestUser];
    expect(mailHeader(room.notification, 'Reply-To')).toMatch(/^reply\+[a-z2-7]{32}@roomcast\.localhost$/);
    expect(mailHeader(room.notification, 'Auto-Submitted')).toBe('auto-generated');
    expect(mailHeader(room.notification, 'Return-Path')).toMatch(/^<bounces\+[a-z2-7]{32}@roomcast\.localhost>$/);
    const live: RoomMessage[] = [];
    await subscribeWithReceipt(await stompAs(watcher), exchangeDestination(roomAllKey(room.id)), (m) => live.push(JSON.parse(m.body) as RoomMessage));

    const first = replyTo(REPLY_FIXTURES[0]!.file, room.notification, room.email);
    for (const f of REPLY_FIXTURES) {
      const mail = f === REPLY_FIXTURES[0] ? first : replyTo(f.file, room.notification, room.email);
      const sent = await swaks({ from: room.email, to: mail.to, data: mail.data });
      expect(sent.ok, sent.output).toBe(true);
    }
    const fromMail = async () => (await messagesOf(room.instructor, room.id)).filter((m) => m.senderId === author.id);
    await waitFor(async () => (await fromMail()).length === REPLY_FIXTURES.length, 'a message per reply', 30_000);
    const posted = await fromMail();
    expect(posted.map((m) => m.body.text).sort()).toEqual(REPLY_FIXTURES.map((f) => f.posts).sort());
    for (const m of posted) expect([m.audience, m.kind, m.body.via]).toEqual(['everyone', 'chat', 'email']);
    await waitFor(() => posted.every((p) => live.some((m) => m.id === p.id)), 'the watcher to receive every reply live');

    // The same mail again (the MTA never saw our 250): nothing new.
    const replayed = await inbound('posted', 'replayed');
    expect((await swaks({ from: room.email, to: first.to, data: first.data })).ok).toBe(true);
    await answered('posted', 'replayed', replayed);
    expect(await fromMail()).toHaveLength(REPLY_FIXTURES.length);
  });

  it('posts a reply to an instructor’s private message as a private reply in that thread', async () => {
    const room = await makeRoom(h, 2);
    const [learner, other] = room.learners as [TestUser, TestUser];
    const email = await withAddress(learner);
    await send(room.instructor, room.id, { audience: 'member', recipientId: learner.id, kind: 'chat', body: { text: 'Please upload your essay.' } });
    const { raw } = await nthMail(email, 1);
    const mail = replyTo('thunderbird.eml', raw, email);
    expect((await swaks({ from: email, to: mail.to, data: mail.data })).ok).toBe(true);
    const reply = async () => (await messagesOf(room.instructor, room.id)).find((m) => m.senderId === learner.id);
    await waitFor(async () => (await reply()) !== undefined, 'the private reply', 30_000);
    expect(await reply()).toMatchObject({ audience: 'member', recipientId: room.instructor.id, kind: 'chat', body: { text: 'Done, I uploaded it to the shared folder.' } });
    expect((await messagesOf(other, room.id)).some((m) => m.senderId === learner.id)).toBe(false);
  });

  it('posts one mail sent to two reply addresses of one room into each thread', async () => {
    const room = await announced(1);
    const learner = room.learners[0]!;
    await send(room.instructor, room.id, { audience: 'member', recipientId: learner.id, kind: 'chat', body: { text: 'Please upload your essay.' } });
    const privately = (await nthMail(room.email, 2)).raw;
    const open = replyTo('thunderbird.eml', room.notification, room.email);
    const thread = mailHeader(privately, 'Reply-To')!;
    expect(thread).not.toBe(open.to);
    const sent = await swaks({ from: room.email, to: `${open.to},${thread}`, data: open.data.replace(`To: ${open.to}`, `To: ${open.to}\r\nCc: ${thread}`) });
    expect(sent.ok, sent.output).toBe(true);
    const fromMail = async () => (await messagesOf(room.instructor, room.id)).filter((m) => m.senderId === learner.id);
    await waitFor(async () => (await fromMail()).length === 2, 'a post in each thread', 30_000);
    expect((await fromMail()).map((m) => m.audience).sort()).toEqual(['everyone', 'member']);
  });

  it('posts a reply whose text holds a NUL without it', async () => {
    const room = await announced(1);
    const to = mailHeader(room.notification, 'Reply-To')!;
    const data = [`From: <${room.email}>`, `To: ${to}`, 'Subject: Re: hi', `Message-ID: ${messageId()}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable', '', 'Got=00 it, thanks.', ''].join('\r\n');
    expect((await swaks({ from: room.email, to, data })).ok).toBe(true);
    const reply = async () => (await messagesOf(room.instructor, room.id)).find((m) => m.senderId === room.learners[0]!.id);
    await waitFor(async () => (await reply()) !== undefined, 'the reply', 30_000);
    expect((await reply())?.body.text).toBe('Got it, thanks.');
  });

  it('refuses (550 5.1.6) an instructor’s private answer to a learner who has left, so the instructor learns why', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const email = await withAddress(room.instructor);
    await send(learner, room.id, { audience: 'instructors', kind: 'question', body: { text: 'Is chapter 3 included?' } });
    const question = (await nthMail(email, 1)).raw;
    expect((await learner.api.post(`/api/rooms/${room.id}/leave`)).status).toBeLessThan(300);
    const mail = replyTo('outlook.eml', question, email);
    const transport = nodemailer.createTransport({ host: h.config.inbound.lmtpHost, port: h.config.inbound.lmtpPort, lmtp: true, ignoreTLS: true });
    try {
      const refused = await transport.sendMail({ envelope: { from: email, to: mail.to }, raw: mail.data }).catch((err: unknown) => err as { rejectedErrors?: { response?: string }[] });
      expect((refused as { rejectedErrors?: { response?: string }[] }).rejectedErrors?.[0]?.response).toMatch(/^550 5\.1\.6 /);
    } finally {
      transport.close();
    }
  });

  it('is kept by Exim while roomcast is unavailable and posted exactly once when it is back', async () => {
    const room = await announced(1);
    const mail = replyTo('gmail.eml', room.notification, room.email);
    await h.server.inbound.stop();
    try {
      expect((await swaks({ from: room.email, to: mail.to, data: mail.data })).ok).toBe(true);
      // Exim tried at once, found no listener, and keeps the mail for its next queue run.
      const mainlog = path.join(eximPaths(h.config).logDir, 'mainlog');
      await waitFor(() => readFileSync(mainlog, 'utf8').split('\n').some((l) => l.includes(' == ') && l.includes(mail.to)), 'Exim to defer the reply', 20_000);
      expect(await eximQueueCount(h.config)).toBeGreaterThan(0);
    } finally {
      await h.server.inbound.start();
    }
    const fromMail = async () => (await messagesOf(room.instructor, room.id)).filter((m) => m.senderId === room.learners[0]!.id);
    await waitFor(async () => (await fromMail()).length === 1, 'Exim’s retry to post the reply', 60_000);
    await waitFor(async () => (await eximQueueCount(h.config)) === 0, 'Exim’s queue to empty', 30_000);
    expect(await fromMail()).toHaveLength(1);
  });
});

describe('mail that must not post', () => {
  /** Sends the mail, waits for the listener to drop it for `reason`, and checks nothing was posted or mailed back. */
  async function dropped(room: Setup, mail: { from: string; to: string; data: string }, reason: string): Promise<void> {
    const before = await inbound('discarded', reason);
    const messages = (await messagesOf(room.instructor, room.id)).length;
    const sent = await swaks(mail);
    expect(sent.ok, sent.output).toBe(true);
    await answered('discarded', reason, before);
    expect(await messagesOf(room.instructor, room.id)).toHaveLength(messages);
    await waitFor(async () => (await h.server.mail.mail.stats()).pending === 0 && (await eximQueueCount(h.config)) === 0, 'mail to settle', 20_000);
    // No answer to anyone: the learner has only the notification, a forger nothing.
    expect(readMailbox(h.config, room.email)).toHaveLength(1);
    if (mail.from !== room.email && mail.from !== '<>') expect(readMailbox(h.config, mail.from)).toHaveLength(0);
  }

  it('drops a reply whose From is not the address’s user', async () => {
    const room = await announced(1);
    const forger = address('forger');
    const mail = replyTo('gmail.eml', room.notification, forger);
    await dropped(room, { from: forger, to: mail.to, data: mail.data }, 'from_mismatch');
    // A forged From header with the right envelope sender is the same forgery.
    await dropped(room, { from: room.email, to: mail.to, data: mail.data.replace(`<${forger}>`, `<${address('other')}>`) }, 'from_mismatch');
  });

  it('drops a reply to an unknown, expired or revoked address', async () => {
    const room = await announced(1);
    const mail = replyTo('gmail.eml', room.notification, room.email);
    const unknown = `reply+${'a'.repeat(32)}@roomcast.localhost`;
    await dropped(room, { from: room.email, to: unknown, data: mail.data.replace(mail.to, unknown) }, 'unknown_address');

    const token = /^reply\+([a-z2-7]{32})@/.exec(mail.to)![1]!;
    const hash = createHash('sha256').update(token).digest('hex');
    await h.server.services.pool.query(`UPDATE inbound_addresses SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, [hash]);
    await dropped(room, { from: room.email, to: mail.to, data: mail.data }, 'expired_address');

    await h.server.services.pool.query(`UPDATE inbound_addresses SET expires_at = now() + interval '1 day' WHERE token_hash = $1`, [hash]);
    const learner = room.learners[0]!;
    const revoked = await learner.api.request('DELETE', `/api/rooms/${room.id}/mail-addresses`);
    expect([revoked.status, revoked.body.revoked > 0]).toEqual([200, true]);
    await dropped(room, { from: room.email, to: mail.to, data: replyTo('gmail.eml', room.notification, room.email).data }, 'revoked_address');
  });

  it('drops auto-replies, list mail and bounces without answering them', async () => {
    const room = await announced(1);
    const mail = replyTo('outlook.eml', room.notification, room.email);
    const withHeader = (header: string): string => mail.data.replace('MIME-Version: 1.0', `${header}\r\nMIME-Version: 1.0`);
    await dropped(room, { from: room.email, to: mail.to, data: withHeader('Auto-Submitted: auto-replied') }, 'auto_submitted');
    await dropped(room, { from: room.email, to: mail.to, data: withHeader('Precedence: bulk') }, 'precedence');
    await dropped(room, { from: room.email, to: mail.to, data: withHeader('List-Id: <physics.lists.example.test>') }, 'list');
    await dropped(room, { from: '<>', to: mail.to, data: mail.data }, 'null_sender');
    // Our own notification coming back (a forwarding loop): its Message-ID is ours, in any case.
    const ours = mailHeader(room.notification, 'Message-ID')!.toUpperCase().replace('@ROOMCAST.LOCALHOST>', '@RoomCast.LocalHost>');
    await dropped(room, { from: room.email, to: mail.to, data: replyTo('outlook.eml', room.notification, room.email, ours).data }, 'loop');
  });

  it('drops a reply with two From lines, a From naming two mailboxes, or a From that only folds to the address in Unicode', async () => {
    const room = await announced(1);
    const email = await withAddress(room.learners[0]!, `kim-${randomBytes(4).toString('hex')}@example.test`);
    await send(room.instructor, room.id, { audience: 'everyone', kind: 'announcement', body: { text: 'one more' } });
    const notification = (await nthMail(email, 1)).raw;
    const setup = { ...room, email, notification };
    const mail = replyTo('gmail.eml', notification, email);
    const withFrom = (...from: string[]): string => mail.data.replace(`From: Minji Lee <${email}>`, from.map((f) => `From: ${f}`).join('\r\n'));
    expect(mail.data).toContain(`From: Minji Lee <${email}>`);
    await dropped(setup, { from: email, to: mail.to, data: withFrom(`<${email}>`, '<forger@example.test>') }, 'from_mismatch');
    await dropped(setup, { from: email, to: mail.to, data: withFrom(`"x" <forger@example.test>@${email.split('@')[1]}`) }, 'from_mismatch');
    await dropped(setup, { from: email, to: mail.to, data: withFrom(`<${email}> <forger@example.test>`) }, 'from_mismatch');
    await dropped(setup, { from: email, to: mail.to, data: withFrom(`<\u212A${email.slice(1)}>`) }, 'from_mismatch');
  });

  it('drops a reply from a member who left, and one to an address made before they left and came back', async () => {
    const room = await announced(1);
    const learner = room.learners[0]!;
    const mail = replyTo('gmail.eml', room.notification, room.email);
    expect((await learner.api.post(`/api/rooms/${room.id}/leave`)).status).toBeLessThan(300);
    await dropped(room, { from: room.email, to: mail.to, data: mail.data }, 'not_a_member');

    expect((await learner.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    await dropped(room, { from: room.email, to: mail.to, data: replyTo('gmail.eml', room.notification, room.email).data }, 'revoked_address');
    // The next notification carries a new address, which works.
    await send(room.instructor, room.id, { audience: 'everyone', kind: 'announcement', body: { text: 'welcome back' } });
    const next = (await nthMail(room.email, 2)).raw;
    expect(mailHeader(next, 'Reply-To')).not.toBe(mail.to);
    const before = await inbound('posted', 'new');
    const again = replyTo('gmail.eml', next, room.email);
    expect((await swaks({ from: room.email, to: again.to, data: again.data })).ok).toBe(true);
    await answered('posted', 'new', before);
  });

  it('drops a redelivery of a posted mail whose text now strips differently', async () => {
    const room = await announced(1);
    const mail = replyTo('gmail.eml', room.notification, room.email);
    const before = await inbound('posted', 'new');
    expect((await swaks({ from: room.email, to: mail.to, data: mail.data })).ok).toBe(true);
    await answered('posted', 'new', before);
    const changed = mail.data.replaceAll('Thanks, I will bring the lab report on Friday.', 'Thanks, I will bring it.');
    await dropped(room, { from: room.email, to: mail.to, data: changed }, 'already_posted');
  });

  it('lets only the member revoke their own addresses (401, 403, 404)', async () => {
    const room = await makeRoom(h, 1);
    const stranger = await makeUser(h, 'learner');
    expect((await h.api.request('DELETE', `/api/rooms/${room.id}/mail-addresses`)).status).toBe(401);
    const refused = await stranger.api.request('DELETE', `/api/rooms/${room.id}/mail-addresses`);
    expect([refused.status, refused.body.error.code]).toEqual([403, 'not_a_member']);
    expect((await room.learners[0]!.api.request('DELETE', `/api/rooms/${room.id}/mail-addresses`)).body).toEqual({ revoked: 0 });
    expect((await room.learners[0]!.api.request('DELETE', '/api/rooms/not-a-room/mail-addresses')).status).toBe(404);
  });
});

describe('mail commands', () => {
  const commandMail = (o: { from: string; to: string; subject: string }): string =>
    [`From: <${o.from}>`, `To: ${o.to}`, `Subject: ${o.subject}`, `Message-ID: ${messageId()}`, `Date: ${new Date().toUTCString()}`, '', 'sent from my phone', ''].join('\r\n');

  it('answers history with the recent messages the sender may see, and no instructors-only question of another learner', async () => {
    const room = await makeRoom(h, 2);
    const [learner, other] = room.learners as [TestUser, TestUser];
    const email = await withAddress(learner);
    const secret = `secret question ${randomBytes(3).toString('hex')}`;
    await send(other, room.id, { audience: 'instructors', kind: 'question', body: { text: secret } });
    await send(learner, room.id, { audience: 'instructors', kind: 'question', body: { text: 'my own question' } });
    await send(room.instructor, room.id, { audience: 'everyone', kind: 'announcement', body: { text: 'the announcement' } });
    const notification = await nthMail(email, 1);
    const commands = /cmd\+[a-z2-7]{32}@roomcast\.localhost/.exec(notification.parsed.text ?? '')?.[0];
    expect(commands).toBeDefined();

    const sent = await swaks({ from: email, to: commands!, data: commandMail({ from: email, to: commands!, subject: 'Re: history' }) });
    expect(sent.ok, sent.output).toBe(true);
    const answer = await nthMail(email, 2);
    expect(answer.parsed.subject).toBe(`Recent messages in ${(await room.instructor.api.get(`/api/rooms/${room.id}`)).body.room.name}`);
    expect(mailHeader(answer.raw, 'Auto-Submitted')).toBe('auto-replied');
    expect(answer.parsed.inReplyTo).toBeDefined();
    for (const shown of ['my own question', 'the announcement']) expect(answer.parsed.text).toContain(shown);
    expect(answer.parsed.text).not.toContain(secret);
    expect(String(answer.parsed.html)).not.toContain(secret);
  });

  it('mutes, switches to a digest, unmutes, and answers an unknown command with help', async () => {
    const room = await announced(1);
    const learner = room.learners[0]!;
    const commands = /cmd\+[a-z2-7]{32}@roomcast\.localhost/.exec((await simpleParser(room.notification)).text ?? '')![0];
    const steps: [string, string | null, string][] = [
      ['mute', 'off', 'Your mail about'],
      ['digest hourly', 'hourly', 'Your mail about'],
      ['unmute', 'immediate', 'Your mail about'],
      ['send me everything', null, 'Mail commands for'],
    ];
    let mails = 1;
    for (const [subject, mode, answerSubject] of steps) {
      expect((await swaks({ from: room.email, to: commands, data: commandMail({ from: room.email, to: commands, subject }) })).ok).toBe(true);
      const answer = await nthMail(room.email, ++mails);
      expect(answer.parsed.subject, subject).toContain(answerSubject);
      if (mode !== null) expect((await learner.api.get(`/api/rooms/${room.id}/notifications`)).body).toEqual({ mode });
      else expect(answer.parsed.text).toContain('digest hourly');
    }
  });
});

describe('bounces', () => {
  it('suppresses an address on a real hard-bounce DSN from Exim', async () => {
    const room = await makeRoom(h, 1);
    const email = await withAddress(room.learners[0]!, address('undeliverable'));
    const before = await inbound('bounce', 'hard');
    await send(room.instructor, room.id, { audience: 'member', recipientId: room.learners[0]!.id, kind: 'chat', body: { text: 'this one bounces' } });
    // The relay accepts it, routing fails it, and Exim mails a DSN to the mail's bounces+ return path.
    await answered('bounce', 'hard', before);
    expect(await h.server.mail.store.isSuppressed(email)).toBe(true);
  });

  it('counts a soft bounce without suppressing the address', async () => {
    const room = await announced(1);
    const returnPath = /<(.+)>/.exec(mailHeader(room.notification, 'Return-Path')!)![1]!;
    const dsn = readFileSync(path.join(import.meta.dirname, 'fixtures', 'inbound', 'dsn-delayed.eml'), 'utf8')
      .replaceAll('{{TO}}', returnPath)
      .replaceAll('{{RECIPIENT}}', room.email)
      .replaceAll('{{MESSAGE_ID}}', messageId())
      .replaceAll('{{RETURNED_ID}}', mailHeader(room.notification, 'Message-ID')!)
      .replace(/\r?\n/g, '\r\n');
    const before = await inbound('bounce', 'soft');
    expect((await swaks({ from: '<>', to: returnPath, data: dsn })).ok).toBe(true);
    await answered('bounce', 'soft', before);
    expect(await h.server.mail.store.isSuppressed(room.email)).toBe(false);
    const { rows } = await h.server.services.pool.query('SELECT count, last_status FROM mail_soft_bounces WHERE email = $1', [room.email]);
    expect(rows).toEqual([{ count: 1, last_status: expect.stringMatching(/^4\.2\.2/) }]);
  });
});

describe('forged bounces', () => {
  /** A soft-bounce report about `room.email`, sent to its return path; `returned` is the Message-ID of the mail it says it returns. */
  const report = (room: Setup, returned: string): { returnPath: string; data: string } => {
    const returnPath = /<(.+)>/.exec(mailHeader(room.notification, 'Return-Path')!)![1]!;
    const data = readFileSync(path.join(import.meta.dirname, 'fixtures', 'inbound', 'dsn-delayed.eml'), 'utf8')
      .replaceAll('{{TO}}', returnPath)
      .replaceAll('{{RECIPIENT}}', room.email)
      .replaceAll('{{MESSAGE_ID}}', messageId())
      .replaceAll('{{RETURNED_ID}}', returned)
      .replace(/\r?\n/g, '\r\n');
    return { returnPath, data };
  };

  it('count nothing when not sent by an MTA (a sender), or not about a mail of ours', async () => {
    const room = await announced(1);
    const ours = mailHeader(room.notification, 'Message-ID')!;
    const attempts: [string, string][] = [
      [room.email, ours],
      ['<>', messageId()],
    ];
    for (const [from, returned] of attempts) {
      const { returnPath, data } = report(room, returned);
      const before = await inbound('discarded', 'unverified_report');
      expect((await swaks({ from, to: returnPath, data })).ok).toBe(true);
      await answered('discarded', 'unverified_report', before);
    }
    // One about another address, through the right return path, with our Message-ID.
    const other = report(room, ours);
    const before = await inbound('discarded', 'unverified_report');
    expect((await swaks({ from: '<>', to: other.returnPath, data: other.data.replaceAll(`rfc822; ${room.email}`, 'rfc822; stranger@example.test').replaceAll(`rfc822;${room.email}`, 'rfc822;stranger@example.test') })).ok).toBe(true);
    await answered('discarded', 'unverified_report', before);
    const { rows } = await h.server.services.pool.query('SELECT 1 FROM mail_soft_bounces WHERE email = $1', [room.email]);
    expect(rows).toEqual([]);
    expect(await h.server.mail.store.isSuppressed(room.email)).toBe(false);
  });
});

describe('reply addresses over time', () => {
  it('are replaced on new mail once older than the rotation, and the old one works until it expires', async () => {
    const room = await announced(1);
    const old = mailHeader(room.notification, 'Reply-To')!;
    const hash = createHash('sha256').update(/^reply\+([a-z2-7]{32})@/.exec(old)![1]!).digest('hex');
    // As if the learner had joined 92 days ago and been mailed the next day.
    await h.server.services.pool.query(`UPDATE memberships SET joined_at = now() - interval '92 days' WHERE room_id = $1 AND user_id = $2`, [room.id, room.learners[0]!.id]);
    await h.server.services.pool.query(`UPDATE inbound_addresses SET created_at = now() - interval '91 days' WHERE token_hash = $1`, [hash]);
    await send(room.instructor, room.id, { audience: 'everyone', kind: 'announcement', body: { text: 'rotated' } });
    const next = (await nthMail(room.email, 2)).raw;
    expect(mailHeader(next, 'Reply-To')).toMatch(/^reply\+[a-z2-7]{32}@roomcast\.localhost$/);
    expect(mailHeader(next, 'Reply-To')).not.toBe(old);
    const before = await inbound('posted', 'new');
    const mail = replyTo('gmail.eml', room.notification, room.email);
    expect((await swaks({ from: room.email, to: mail.to, data: mail.data })).ok).toBe(true);
    await answered('posted', 'new', before);
  });

  it('are deleted a while after they stop working, when new ones are made', async () => {
    const room = await announced(1);
    const hash = createHash('sha256').update(/^reply\+([a-z2-7]{32})@/.exec(mailHeader(room.notification, 'Reply-To')!)![1]!).digest('hex');
    await h.server.services.pool.query(`UPDATE inbound_addresses SET expires_at = now() - interval '31 days' WHERE token_hash = $1`, [hash]);
    await announced(1);
    const { rows } = await h.server.services.pool.query('SELECT 1 FROM inbound_addresses WHERE token_hash = $1', [hash]);
    expect(rows).toEqual([]);
  });
});

describe('the LMTP listener', () => {
  const lmtp = () => nodemailer.createTransport({ host: h.config.inbound.lmtpHost, port: h.config.inbound.lmtpPort, lmtp: true, ignoreTLS: true });
  /** The listener's answer for the one recipient: nodemailer resolves an LMTP send and lists per-recipient refusals. */
  const answer = async (send: Promise<{ rejectedErrors?: { responseCode?: number; response?: string }[] }>): Promise<{ code: number; response: string }> => {
    try {
      const info = await send;
      const refused = info.rejectedErrors?.[0];
      return refused === undefined ? { code: 250, response: '' } : { code: refused.responseCode ?? 0, response: refused.response ?? '' };
    } catch (err) {
      return { code: (err as { responseCode?: number }).responseCode ?? 0, response: (err as { response?: string }).response ?? '' };
    }
  };

  it('refuses mail over the size limit (552) and an address not of our shapes (550)', async () => {
    const room = await announced(1);
    const to = mailHeader(room.notification, 'Reply-To')!;
    const transport = lmtp();
    try {
      const big = transport.sendMail({ from: room.email, to, subject: 'big', text: 'x'.repeat(h.config.inbound.maxBytes + 1) });
      expect((await answer(big)).code).toBe(552);
      expect((await answer(transport.sendMail({ from: room.email, to: 'someone@roomcast.localhost', subject: 'x', text: 'x' }))).code).toBe(550);
      // Exim refuses that shape at RCPT already, so the sender's own MTA tells them.
      const viaExim = await swaks({ from: room.email, to: 'someone@roomcast.localhost', data: 'Subject: x\r\n\r\nx\r\n' });
      expect(viaExim.ok).toBe(false);
      expect(viaExim.output).toContain('550 5.1.1');
    } finally {
      transport.close();
    }
  });

  it(`defers (451) a sender's replies beyond ${MAX_PER_HOUR} an hour, so the MTA offers them again later`, async () => {
    const room = await announced(1);
    const transport = lmtp();
    try {
      let first: { to: string; data: string } | undefined;
      for (let i = 0; i < MAX_PER_HOUR; i++) {
        const mail = replyTo('gmail.eml', room.notification, room.email);
        first ??= mail;
        expect((await answer(transport.sendMail({ envelope: { from: room.email, to: mail.to }, raw: mail.data }))).code).toBe(250);
      }
      const over = replyTo('gmail.eml', room.notification, room.email);
      expect(await answer(transport.sendMail({ envelope: { from: room.email, to: over.to }, raw: over.data }))).toEqual({ code: 451, response: expect.stringContaining('too many mails') });
      // A mail already counted, offered again (our 250 was lost), counts nothing more and is answered.
      expect((await answer(transport.sendMail({ envelope: { from: room.email, to: first!.to }, raw: first!.data }))).code).toBe(250);
    } finally {
      transport.close();
    }
    expect((await messagesOf(room.instructor, room.id)).filter((m) => m.senderId === room.learners[0]!.id)).toHaveLength(MAX_PER_HOUR);
  });

  it('refuses a reply with no text of its own (550), with the reason', async () => {
    const room = await announced(1);
    const mail = replyTo('gmail.eml', room.notification, room.email);
    const transport = lmtp();
    try {
      const empty = mail.data.replace('Thanks, I will bring the lab report on Friday.', '').replace('<div dir="ltr">Thanks, I will bring the lab report on Friday.</div>', '');
      expect(await answer(transport.sendMail({ envelope: { from: room.email, to: mail.to }, raw: empty }))).toEqual({ code: 550, response: expect.stringContaining('nothing to post') });
    } finally {
      transport.close();
    }
  });
});
