import { readFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { automaticReason, type MailFacts } from '../../src/inbound/automatic-mail';
import { deliveryStatusPart, parseDeliveryStatus } from '../../src/inbound/dsn';
import { parseInboundAddress } from '../../src/mail/inbound-addresses';
import { clientMsgIdOf } from '../../src/inbound/inbound-processor';
import { DEFAULT_HISTORY, MAX_HISTORY, parseCommand } from '../../src/inbound/mail-commands';
import { MAX_TEXT_CHARS, stripQuotes } from '../../src/inbound/quote-strip';
import { replyTarget } from '../../src/mail/reply-target';
import { fillFixture, REPLY_FIXTURES } from '../fixtures/inbound/replies';

const vars = { from: 'minji@example.test', to: 'reply+abcdefghijklmnopqrstuvwxyz234567@roomcast.localhost', messageId: '<m1@mail.example.test>', inReplyTo: '<n1@roomcast.localhost>' };

describe('quote stripping', () => {
  it.each(REPLY_FIXTURES)('keeps only the new text of a reply from $client', async ({ file, posts }) => {
    const parsed = await simpleParser(fillFixture(file, vars));
    expect(stripQuotes(parsed.text ?? '')).toBe(posts);
  });

  it('cuts a Naver-style Korean attribution, a forwarded header block and mobile footers', () => {
    expect(stripQuotes('좋아요!\n\n2025. 3. 4. 오후 3:15, 김선생 작성:\n> 원문')).toBe('좋아요!');
    expect(stripQuotes('See below.\n\n________________________________\nFrom: Kim\nSent: Tuesday\n\nold')).toBe('See below.');
    expect(stripQuotes('확인했습니다\n\niPhone에서 보냄')).toBe('확인했습니다');
    expect(stripQuotes('Got it\n\nSent from my iPhone\n\n> quoted')).toBe('Got it');
  });

  it('keeps answers written between quoted lines and drops the quoted lines', () => {
    expect(stripQuotes('> Is chapter 3 included?\nYes.\n> And 4?\nNo.')).toBe('Yes.\nNo.');
  });

  it('leaves a person’s text alone when nothing is quoted, and finds nothing in a quote alone', () => {
    expect(stripQuotes('On Monday I will be late.\n\nThanks')).toBe('On Monday I will be late.\n\nThanks');
    expect(stripQuotes('On Tue, Mar 4, 2025 at 3:15 PM roomcast wrote:\n> hi')).toBe('');
  });

  it('drops a closing sign-off with a name under it, and keeps one without a name or with a sentence under it', () => {
    expect(stripQuotes('See you Friday.\n\nBest regards,\nJordan Park')).toBe('See you Friday.');
    expect(stripQuotes('See you Friday.\nThanks!\nJordan')).toBe('See you Friday.');
    expect(stripQuotes('내일 제출하겠습니다.\n\n감사합니다.\n김민지\n\niPhone에서 보냄')).toBe('내일 제출하겠습니다.');
    expect(stripQuotes('네, 알겠습니다.\n감사합니다!')).toBe('네, 알겠습니다.\n감사합니다!');
    expect(stripQuotes('Thanks,\nsee you tomorrow')).toBe('Thanks,\nsee you tomorrow');
    expect(stripQuotes('Regards,\nJordan')).toBe('Regards,\nJordan');
    expect(stripQuotes('Can I hand it in late?\nThanks,\nJordan Park, class 3, who was ill all week')).toBe('Can I hand it in late?\nThanks,\nJordan Park, class 3, who was ill all week');
  });

  it('cuts at Korean Thunderbird’s attribution line', () => {
    expect(stripQuotes('좋아요\n\n2025. 3. 4. 오후 3:15에 김선생 이(가) 쓴 글:\n> 원문')).toBe('좋아요');
    expect(stripQuotes('좋아요\n2025-03-04 15:15에 김선생\n<kim@example.test> 이(가) 쓴 글:\n> 원문')).toBe('좋아요');
  });
});

describe('quote stripping of hostile text', () => {
  // Each of these took the old patterns time quadratic in the line (40,000 spaces: 1.6 s).
  const space = ' '.repeat(100_000);
  const hostile = [
    `From:${space}`,
    `From:${space}x`,
    `*From: *${space}*`,
    `보낸 사람:${space}`,
    `Sent:${space}`,
    `On${space}`,
    `On x wrote:${space}x`,
    `2025년 3월 4일${space}님이${space}`,
    `2025. 3. 4.${space}이(가)${space}`,
    `${'-'.repeat(100_000)}x`,
    `--${space}Original Message${space}`,
    `Best regards,\n${'J'.repeat(100_000)}`,
  ];

  it('cuts the text to a bound before stripping, and takes no long line for a header or an attribution', () => {
    expect(stripQuotes(`Yes.\nFrom:${space}x\nSent: Monday\n\nold`)).toBe('Yes.\nFrom:');
    expect(stripQuotes(`Yes.\nOn Tuesday ${'x'.repeat(300)} wrote:\n> old`)).toBe(`Yes.\nOn Tuesday ${'x'.repeat(300)} wrote:`);
    const mega = stripQuotes(`Hello\n${'y'.repeat(1024 * 1024)}`);
    expect(mega.length).toBe(MAX_TEXT_CHARS);
  });

  it('strips lines of 100,000 spaces and of a megabyte in one pass, not quadratic time', () => {
    const started = performance.now();
    for (const line of hostile) expect(stripQuotes(`Answer.\n${line}\nSent: Monday`).startsWith('Answer.')).toBe(true);
    expect(stripQuotes(`Answer.\n${' '.repeat(1024 * 1024)}From:${' '.repeat(1024 * 1024)}x`)).toBe('Answer.');
    // A guard only: quadratic patterns take minutes here; linear ones a few milliseconds.
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

const facts = (over: Partial<MailFacts> & { headers?: Record<string, string> } = {}): MailFacts => ({
  envelopeFrom: 'minji@example.test',
  from: 'minji@example.test',
  receivedCount: 2,
  header: (name) => over.headers?.[name],
  ...over,
});
const own = { address: (a: string) => a.endsWith('@roomcast.localhost'), messageId: (id: string) => id.endsWith('@roomcast.localhost>') };

describe('automatic mail', () => {
  it('is nothing special when a person wrote it', () => {
    expect(automaticReason(facts(), own)).toBeNull();
    expect(automaticReason(facts({ headers: { 'auto-submitted': 'no' } }), own)).toBeNull();
  });

  it.each([
    ['a bounce (empty envelope sender)', facts({ envelopeFrom: '' }), 'null_sender'],
    ['an RFC 3834 auto-reply', facts({ headers: { 'auto-submitted': 'auto-replied' } }), 'auto_submitted'],
    ['auto-generated mail', facts({ headers: { 'auto-submitted': 'auto-generated; owner-email="x@y"' } }), 'auto_submitted'],
    ['bulk mail', facts({ headers: { precedence: 'bulk' } }), 'precedence'],
    ['junk', facts({ headers: { precedence: 'junk' } }), 'precedence'],
    ['list mail by Precedence', facts({ headers: { precedence: 'list' } }), 'precedence'],
    ['list mail by List-Id', facts({ headers: { 'list-id': '<class.lists.example>' } }), 'list'],
    ['an old-style vacation reply', facts({ headers: { 'x-autoreply': 'yes' } }), 'autoreply_header'],
    ['mail that went round too many hops', facts({ receivedCount: 31 }), 'loop'],
    ['our own mail coming back (From)', facts({ from: 'no-reply@roomcast.localhost' }), 'loop'],
    ['our own mail coming back (Message-ID)', facts({ headers: { 'message-id': '<abc@roomcast.localhost>' } }), 'loop'],
  ])('is recognised: %s', (_what, m, reason) => {
    expect(automaticReason(m, own)).toBe(reason);
  });
});

describe('mail commands', () => {
  it.each([
    ['history', { name: 'history', count: DEFAULT_HISTORY }],
    ['Re: History 5', { name: 'history', count: 5 }],
    ['history 500', { name: 'history', count: MAX_HISTORY }],
    ['기록', { name: 'history', count: DEFAULT_HISTORY }],
    ['mute', { name: 'mode', mode: 'off' }],
    ['RE: FW: unmute', { name: 'mode', mode: 'immediate' }],
    ['digest', { name: 'mode', mode: 'daily' }],
    ['digest hourly', { name: 'mode', mode: 'hourly' }],
    ['답장: 요약 매일', { name: 'mode', mode: 'daily' }],
    ['help', { name: 'help' }],
    ['please send everything', { name: 'help' }],
    ['', { name: 'help' }],
    ['history lots', { name: 'help' }],
    ['digest weekly', { name: 'help' }],
    ['constructor', { name: 'help' }],
  ])('reads %j', (subject, command) => {
    expect(parseCommand(subject)).toEqual(command);
  });
});

describe('reply addresses', () => {
  it('are ours only on the inbound domain, in one of three shapes, whatever the case', () => {
    const token = 'abcdefghijklmnopqrstuvwxyz234567';
    expect(parseInboundAddress(`reply+${token}@roomcast.localhost`, 'roomcast.localhost')).toEqual({ purpose: 'reply', token });
    expect(parseInboundAddress(`CMD+${token.toUpperCase()}@RoomCast.localhost`, 'roomcast.localhost')).toEqual({ purpose: 'command', token });
    expect(parseInboundAddress(`bounces+${token}@roomcast.localhost`, 'roomcast.localhost')).toEqual({ purpose: 'bounce', token });
    for (const a of [`reply+${token}@elsewhere.test`, `reply+${token.slice(1)}@roomcast.localhost`, `other+${token}@roomcast.localhost`, 'no-reply@roomcast.localhost', `reply+${token}`]) {
      expect(parseInboundAddress(a, 'roomcast.localhost'), a).toBeNull();
    }
  });

  it('post an instructor’s answer where the question was asked, and a learner’s reply in the thread', () => {
    const learnerId = 'l-1';
    const instructorId = 'i-1';
    expect(replyTarget({ audience: 'instructors', senderId: learnerId }, { role: 'instructor' })).toEqual({ audience: 'member', recipientId: learnerId, kind: 'answer' });
    expect(replyTarget({ audience: 'everyone', senderId: learnerId }, { role: 'instructor' })).toEqual({ audience: 'everyone', recipientId: null, kind: 'answer' });
    expect(replyTarget({ audience: 'member', senderId: instructorId }, { role: 'learner' })).toEqual({ audience: 'member', recipientId: instructorId, kind: 'chat' });
    expect(replyTarget({ audience: 'everyone', senderId: instructorId }, { role: 'learner' })).toEqual({ audience: 'everyone', recipientId: null, kind: 'chat' });
  });

  it('key a post by the mail’s Message-ID, so a redelivered mail posts once', async () => {
    const a = await simpleParser(fillFixture('gmail.eml', vars));
    const again = await simpleParser(fillFixture('gmail.eml', vars));
    const other = await simpleParser(fillFixture('gmail.eml', { ...vars, messageId: '<m2@mail.example.test>' }));
    expect(clientMsgIdOf(a)).toBe(clientMsgIdOf(again));
    expect(clientMsgIdOf(a)).not.toBe(clientMsgIdOf(other));
    expect(clientMsgIdOf(a)).toMatch(/^[\w.:-]{1,100}$/);
  });
});

describe('delivery status notifications', () => {
  const report = (recipients: string): string => `Reporting-MTA: dns; mx.example.test\nArrival-Date: Tue, 4 Mar 2025 15:15:00 +0000\n\n${recipients}`;

  it('call a permanent failure hard', () => {
    const r = parseDeliveryStatus(report('Final-Recipient: rfc822; gone@example.test\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n'));
    expect(r.kind).toBe('hard');
    expect(r.recipients).toEqual([{ finalRecipient: 'gone@example.test', action: 'failed', status: '5.1.1', diagnostic: 'smtp; 550 5.1.1 no such user' }]);
  });

  it('call a delay or a temporary failure soft, and a delivery nothing', () => {
    expect(parseDeliveryStatus(report('Final-Recipient: rfc822; full@example.test\nAction: delayed\nStatus: 4.2.2\n')).kind).toBe('soft');
    expect(parseDeliveryStatus(report('Final-Recipient: rfc822; a@example.test\nAction: failed\nStatus: 4.4.7\n')).kind).toBe('soft');
    expect(parseDeliveryStatus(report('Final-Recipient: rfc822; a@example.test\nAction: delivered\nStatus: 2.0.0\n')).kind).toBeNull();
    expect(parseDeliveryStatus('garbage').kind).toBeNull();
  });

  it('take the worst of several recipients, with folded fields', () => {
    const r = parseDeliveryStatus(report('Final-Recipient: rfc822; a@example.test\nAction: delayed\nStatus: 4.2.2\n\nFinal-Recipient: rfc822;\n b@example.test\nAction: failed\nStatus: 5.2.1\n'));
    expect(r.kind).toBe('hard');
    expect(r.recipients.map((x) => x.finalRecipient)).toEqual(['a@example.test', 'b@example.test']);
  });
});

describe('the status part of a report', () => {
  it('is read from the raw mail, where mailparser folds it into the text', () => {
    const raw = readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'inbound', 'dsn-delayed.eml'), 'utf8').replace(/\r?\n/g, '\r\n');
    const part = deliveryStatusPart(raw);
    expect(part).toContain('Action: delayed');
    expect(part).not.toContain('text/rfc822-headers');
    expect(parseDeliveryStatus(part ?? '').kind).toBe('soft');
    expect(deliveryStatusPart('Subject: hi\r\n\r\nno report here')).toBeNull();
  });
});
