/**
 * The LMTP listener's answers, against a fake processor: what each outcome, and each failure of
 * what the processor needs, says to the MTA. Real smtp-server on a free port, real LMTP client
 * (nodemailer), no other services.
 */
import nodemailer from 'nodemailer';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { InboundOutcome } from '../../src/inbound/inbound-processor';
import { LmtpListener } from '../../src/inbound/lmtp-server';
import { createMetrics } from '../../src/metrics';

const TOKEN = 'abcdefghijklmnopqrstuvwxyz234567';
const to = (purpose: string, token = TOKEN): string => `${purpose}+${token}@roomcast.test`;

let listener: LmtpListener | null = null;
afterEach(async () => {
  await listener?.stop();
  listener = null;
});

async function listen(process: (recipient: string) => Promise<InboundOutcome>): Promise<LmtpListener> {
  listener = new LmtpListener({
    host: '127.0.0.1',
    port: 0,
    domain: 'roomcast.test',
    maxBytes: 64 * 1024,
    processor: { process: (_mail, recipient) => process(recipient) },
    metrics: createMetrics(async () => 0),
    logger: pino({ level: 'silent' }),
  });
  await listener.start();
  return listener;
}

/** Each recipient's answer code, in order. */
async function answers(l: LmtpListener, recipients: string[]): Promise<Record<string, number>> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: l.port, lmtp: true, ignoreTLS: true });
  try {
    const info = await transport.sendMail({ from: 'minji@example.test', to: recipients, subject: 'Re: hi', text: 'hello' });
    const codes: Record<string, number> = Object.fromEntries(info.accepted.map((a) => [String(a), 250]));
    for (const e of (info as { rejectedErrors?: { recipient: string; responseCode: number }[] }).rejectedErrors ?? []) codes[e.recipient] = e.responseCode;
    return codes;
  } catch (err) {
    const e = err as { rejectedErrors?: { recipient: string; responseCode: number }[]; responseCode?: number };
    if (e.rejectedErrors) return Object.fromEntries(e.rejectedErrors.map((r) => [r.recipient, r.responseCode]));
    throw err;
  } finally {
    transport.close();
  }
}

describe('the LMTP listener', () => {
  it('answers each recipient on its own: 250 for done or dropped, 55x for refused, 451 for later', async () => {
    const outcomes: Record<string, InboundOutcome> = {
      [to('reply')]: { outcome: 'posted', reason: 'new', messageId: 'm-1' },
      [to('cmd')]: { outcome: 'discarded', reason: 'from_mismatch' },
      [to('bounces')]: { outcome: 'refused', reason: 'no_text', code: 550, text: '5.6.0 nothing to post' },
      [to('reply', 'b'.repeat(32))]: { outcome: 'deferred', reason: 'rate_limited', text: '4.7.1 too many' },
    };
    const l = await listen(async (recipient) => outcomes[recipient]!);
    expect(await answers(l, Object.keys(outcomes))).toEqual({ [to('reply')]: 250, [to('cmd')]: 250, [to('bounces')]: 550, [to('reply', 'b'.repeat(32))]: 451 });
  });

  it('answers 451 when Postgres or Redis is away, and when the processor fails in a way it did not expect', async () => {
    const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const l = await listen(async (recipient) => {
      throw recipient === to('reply') ? down : new TypeError('a bug');
    });
    expect(await answers(l, [to('reply'), to('cmd')])).toEqual({ [to('reply')]: 451, [to('cmd')]: 451 });
  });

  it('refuses at RCPT an address that is not one of ours in shape', async () => {
    const l = await listen(async () => ({ outcome: 'posted', reason: 'new', messageId: 'm' }));
    expect(await answers(l, ['someone@roomcast.test', to('reply')])).toEqual({ 'someone@roomcast.test': 550, [to('reply')]: 250 });
  });
});
