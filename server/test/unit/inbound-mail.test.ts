import { readFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { automaticReason, type MailFacts } from '../../src/inbound/automatic-mail';
import { deliveryStatusPart, parseDeliveryStatus, returnedHeadersPart } from '../../src/inbound/dsn';
import { parseInboundAddress, type InboundGrant } from '../../src/mail/inbound-addresses';
import type { SendMessage } from '../../src/messages/send-message';
import { dmarcPassed, fromAddress, parseMailbox, sameAddress } from '../../src/inbound/from-address';
import type { SendMessageRequest } from '../../../shared/protocol/messages';
import type { Pool } from '../../src/db/pool';
import type { BounceStore } from '../../src/inbound/bounce-store';
import { InboundProcessor, mailKey, storableText, type InboundOutcome, type InboundProcessorOptions } from '../../src/inbound/inbound-processor';
import { MailHeaders } from '../../src/inbound/mail-headers';
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

  it('key a post by the mail’s Message-ID and the address, so a redelivered mail posts once and a CC to two threads posts to each', () => {
    const mail = (raw: string) => ({ raw: Buffer.from(raw), headers: MailHeaders.read(Buffer.from(raw)) });
    const a = mail(fillFixture('gmail.eml', vars));
    const other = mail(fillFixture('gmail.eml', { ...vars, messageId: '<m2@mail.example.test>' }));
    expect(mailKey('grant-1', a)).toBe(mailKey('grant-1', mail(fillFixture('gmail.eml', vars))));
    expect(mailKey('grant-1', a)).not.toBe(mailKey('grant-1', other));
    expect(mailKey('grant-1', a)).not.toBe(mailKey('grant-2', a));
    expect(mailKey('grant-1', a)).toMatch(/^[\w.:-]{1,100}$/);
  });

  it('key a mail without a valid Message-ID by its From, Date, Subject and body', () => {
    const mail = (id: string, text = 'hi') => {
      const raw = Buffer.from(`From: <m@example.test>\r\nDate: Tue, 4 Mar 2025 15:20:01 +0900\r\nSubject: Re: x\r\nMessage-ID: ${id}\r\nReceived: by mx${Math.random()}\r\n\r\n${text}\r\n`);
      return { raw, headers: MailHeaders.read(raw) };
    };
    for (const invalid of ['', 'm1@mail.example.test', '<m1>', '<m 1@x>', '<a@b> <c@d>']) {
      expect(MailHeaders.read(mail(invalid).raw).messageId(), invalid).toBeNull();
      // Hops the MTA adds on a redelivery change nothing; another body does.
      expect(mailKey('g', mail(invalid))).toBe(mailKey('g', mail(invalid)));
      expect(mailKey('g', mail(invalid))).not.toBe(mailKey('g', mail(invalid, 'other')));
    }
    expect(MailHeaders.read(mail('<m1@mail.example.test>').raw).messageId()).toBe('<m1@mail.example.test>');
  });
});

describe('text a mail carries', () => {
  it('loses U+0000 and lone surrogates, and keeps everything else, emoji included', () => {
    expect(storableText('a\u0000b')).toBe('ab');
    expect(storableText('x\uD800y\uDC00z')).toBe('xyz');
    expect(storableText('좋아요 \uD83D\uDE00')).toBe('좋아요 \uD83D\uDE00');
  });
});

describe('the From of a mail', () => {
  const headers = (...lines: string[]) => MailHeaders.read(Buffer.from(`${lines.join('\r\n')}\r\n\r\nbody`));

  it.each([
    ['minji@example.test', 'minji@example.test'],
    ['Minji Kim <Minji@Example.test>', 'Minji@Example.test'],
    ['"Kim, Minji" <minji@example.test>', 'minji@example.test'],
    ['=?UTF-8?B?6rmA66+87KeA?= <minji@example.test>', 'minji@example.test'],
    ['minji@example.test (Minji)', 'minji@example.test'],
    ['"a@b" <minji@example.test>', 'minji@example.test'],
    ['민지 <민지@예시.test>', '민지@예시.test'],
  ])('reads %j as one mailbox', (value, address) => {
    expect(parseMailbox(value)).toBe(address);
  });

  it.each([
    ['two mailboxes in angle brackets', '<a@x.test> <b@y.test>'],
    ['a second @ after the angle brackets', '"a" <v@x.test>@evil.test'],
    ['a source route', '<@evil.test:v@x.test>'],
    ['a list', 'a@x.test, b@y.test'],
    ['a group', 'friends: a@x.test;'],
    ['text after the brackets', '<v@x.test> trailing'],
    ['an unquoted @ in the name', 'v@x.test <v@x.test>'],
    ['an open quote', '"Minji <v@x.test>'],
    ['an open comment', 'v@x.test (Minji'],
    ['no address', 'Minji'],
    ['an empty value', ''],
    ['a value longer than any real From', `${'x'.repeat(3000)} <v@x.test>`],
  ])('refuses %s', (_what, value) => {
    expect(parseMailbox(value)).toBeNull();
  });

  it('is read only when the mail has exactly one From line', () => {
    expect(fromAddress(headers('From: <minji@example.test>'))).toBe('minji@example.test');
    expect(fromAddress(headers('From: <minji@example.test>', 'From: <forger@example.test>'))).toBeNull();
    expect(fromAddress(headers('Subject: none'))).toBeNull();
  });

  it('matches the stored address folding ASCII case only', () => {
    expect(sameAddress('Minji@Example.TEST', 'minji@example.test')).toBe(true);
    // U+212A KELVIN SIGN lower-cases to k in Unicode; it is not the same address.
    expect(sameAddress('\u212Aim@example.test', 'kim@example.test')).toBe(false);
    expect(sameAddress('민지@example.test', '민지@example.test')).toBe(true);
    expect(sameAddress('민지@example.test', '민지@example.test'.normalize('NFD'))).toBe(false);
    expect(sameAddress('ÉLÈVE@example.test', 'élève@example.test')).toBe(false);
  });

  it('counts as vouched for only by the configured MTA’s own dmarc=pass for the user’s domain', () => {
    const ar = (...values: string[]) => headers(...values.map((v) => `Authentication-Results: ${v}`));
    const ok = 'mx.roomcast.test; spf=pass smtp.mailfrom=example.test; dkim=pass header.d=example.test; dmarc=pass (p=reject) header.from=example.test';
    expect(dmarcPassed(ar(ok), 'mx.roomcast.test', 'example.test')).toBe(true);
    expect(dmarcPassed(ar('MX.Roomcast.test 1; dmarc=pass header.from="Example.test"'), 'mx.roomcast.test', 'example.test')).toBe(true);
    expect(dmarcPassed(ar(ok), 'mx.roomcast.test', 'other.test')).toBe(false);
    expect(dmarcPassed(ar(ok.replace('mx.roomcast.test', 'mx.evil.test')), 'mx.roomcast.test', 'example.test')).toBe(false);
    expect(dmarcPassed(ar('mx.roomcast.test; dmarc=fail (dmarc=pass header.from=example.test) header.from=example.test'), 'mx.roomcast.test', 'example.test')).toBe(false);
    expect(dmarcPassed(ar('mx.roomcast.test; dmarc=none header.from=example.test'), 'mx.roomcast.test', 'example.test')).toBe(false);
    // The MTA's own header comes first; one the sender wrote below it is never read.
    expect(dmarcPassed(ar('mx.roomcast.test; dmarc=fail header.from=example.test', ok), 'mx.roomcast.test', 'example.test')).toBe(false);
    expect(dmarcPassed(headers('Subject: none'), 'mx.roomcast.test', 'example.test')).toBe(false);
  });
});

describe('delivery status notifications', () => {
  const report = (recipients: string): string => `Reporting-MTA: dns; mx.example.test\nArrival-Date: Tue, 4 Mar 2025 15:15:00 +0000\n\n${recipients}`;

  it('call a permanent failure hard', () => {
    const r = parseDeliveryStatus(report('Final-Recipient: rfc822; gone@example.test\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n'));
    expect(r.kind).toBe('hard');
    expect(r.recipients).toEqual([{ finalRecipient: 'gone@example.test', originalRecipient: null, action: 'failed', status: '5.1.1', diagnostic: 'smtp; 550 5.1.1 no such user' }]);
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

  it('read only the recipients asked about, by final or original recipient', () => {
    const body = report('Final-Recipient: rfc822; a@example.test\nAction: delayed\nStatus: 4.2.2\n\nFinal-Recipient: rfc822; b@example.test\nOriginal-Recipient: rfc822;<c@example.test>\nAction: failed\nStatus: 5.2.1\n');
    expect(parseDeliveryStatus(body, (r) => r === 'a@example.test').kind).toBe('soft');
    expect(parseDeliveryStatus(body, (r) => r === 'c@example.test').kind).toBe('hard');
    expect(parseDeliveryStatus(body, (r) => r === 'z@example.test')).toEqual({ recipients: [], kind: null });
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
    expect(returnedHeadersPart(raw)).toContain('Message-ID: {{RETURNED_ID}}');
  });

  it('returns the headers of a returned whole message, not its body', () => {
    const raw = ['Content-Type: multipart/report; report-type=delivery-status; boundary="b"', '', '--b', 'Content-Type: message/rfc822', '', 'Message-ID: <x@roomcast.test>', 'Subject: s', '', 'Message-ID: <forged@roomcast.test>', '--b--'].join('\r\n');
    expect(returnedHeadersPart(raw)).toBe('Message-ID: <x@roomcast.test>\r\nSubject: s');
    expect(returnedHeadersPart('Subject: hi\r\n\r\nnothing returned')).toBeNull();
  });
});

describe('the inbound processor, before it reads the body', () => {
  const grant: InboundGrant = { purpose: 'reply', id: 'g-1', userId: 'u-1', roomId: 'r-1', target: { audience: 'everyone', recipientId: null, kind: 'chat' } };
  const to = `reply+${'a'.repeat(32)}@roomcast.localhost`;

  function processor(o: { resolve?: InboundGrant | 'unknown' | 'expired'; authservId?: string } = {}) {
    const seen = { parses: 0, counted: 0, sent: [] as SendMessageRequest[] };
    const mail = {
      addresses: { resolve: async () => o.resolve ?? grant },
      store: { members: async () => [{ id: 'u-1', role: 'learner', name: 'Minji', email: 'Minji@Example.test', mode: 'immediate' }] },
    } as unknown as InboundProcessorOptions['mail'];
    const p = new InboundProcessor({
      pool: {} as Pool,
      mail,
      bounces: {} as BounceStore,
      sendMessage: {
        send: async (_roomId, _userId, req) => {
          seen.sent.push(req);
          return { message: { id: 'm-1' }, replayed: false } as Awaited<ReturnType<SendMessage['send']>>;
        },
      },
      rate: {
        count: async () => {
          seen.counted++;
          return null;
        },
      },
      domain: 'RoomCast.localhost',
      messageIdDomain: 'RoomCast.localhost',
      ownFrom: 'roomcast <no-reply@roomcast.localhost>',
      authservId: o.authservId ?? null,
    });
    const receive = (headers: string[], body = 'Thanks!'): Promise<InboundOutcome> => {
      const raw = Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body}\r\n`);
      return p.process(
        {
          envelopeFrom: 'minji@example.test',
          raw,
          headers: MailHeaders.read(raw),
          parsed: () => {
            seen.parses++;
            return simpleParser(raw);
          },
        },
        to,
      );
    };
    return { receive, seen };
  }
  const base = ['From: Minji <minji@example.test>', `To: ${to}`, 'Subject: Re: hi', 'Message-ID: <m-1@mail.example.test>'];

  it('drops an unknown or expired token, a forged From, our own mail and a robot’s without parsing or counting the mail', async () => {
    for (const resolve of ['unknown', 'expired'] as const) {
      const { receive, seen } = processor({ resolve });
      expect(await receive(base)).toEqual({ outcome: 'discarded', reason: `${resolve}_address` });
      expect([seen.parses, seen.counted]).toEqual([0, 0]);
    }
    const cases: [string[], string][] = [
      [[...base.slice(1), 'From: <forger@example.test>'], 'from_mismatch'],
      [[...base, 'From: <forger@example.test>'], 'from_mismatch'],
      [[...base.slice(1), 'From: <\u212Aim@example.test>'], 'from_mismatch'],
      [[...base.slice(0, 3), 'Message-ID: <n-1@roomcast.LOCALHOST>'], 'loop'],
      [[...base, 'List-Id: <class.lists.example.test>'], 'list'],
    ];
    for (const [headers, reason] of cases) {
      const { receive, seen } = processor();
      expect(await receive(headers), reason).toEqual({ outcome: 'discarded', reason });
      expect([seen.parses, seen.counted]).toEqual([0, 0]);
    }
  });

  it('posts what passes, without NUL, keyed by address and Message-ID, parsing and counting it once', async () => {
    const { receive, seen } = processor();
    // Quoted-printable is one way a NUL gets into the text (mailparser's decoders already turn a lone surrogate into U+FFFD).
    const headers = [...base, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable'];
    expect(await receive(headers, 'Thanks=00 for this')).toMatchObject({ outcome: 'posted' });
    expect(seen.sent.map((r) => r.body)).toEqual([{ text: 'Thanks for this', via: 'email' }]);
    expect(seen.sent[0]?.clientMsgId).toBe(mailKey('g-1', { raw: Buffer.from(''), headers: MailHeaders.read(Buffer.from(`${base.join('\r\n')}\r\n\r\n`)) }));
    expect([seen.parses, seen.counted]).toEqual([1, 1]);
  });

  it('with an authserv-id set, needs that MTA’s dmarc=pass for the user’s domain', async () => {
    const strict = processor({ authservId: 'mx.roomcast.test' });
    expect(await strict.receive(base)).toEqual({ outcome: 'discarded', reason: 'not_authenticated' });
    expect(await strict.receive([...base, 'Authentication-Results: mx.roomcast.test; dmarc=pass header.from=other.test'])).toEqual({ outcome: 'discarded', reason: 'not_authenticated' });
    expect(strict.seen.parses).toBe(0);
    expect(await strict.receive(['Authentication-Results: mx.roomcast.test; dkim=pass; dmarc=pass header.from=example.test', ...base])).toMatchObject({ outcome: 'posted' });
  });
});
