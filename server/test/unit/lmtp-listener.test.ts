/**
 * The LMTP listener's answers, against a fake processor: what each outcome, and each failure of
 * what the processor needs, says to the MTA. Real smtp-server on a free port, real LMTP client
 * (nodemailer), no other services.
 */
import nodemailer from 'nodemailer';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors';
import type { InboundOutcome, ReceivedMail } from '../../src/inbound/inbound-processor';
import { LmtpListener } from '../../src/inbound/lmtp-server';
import { createMetrics, type Metrics } from '../../src/metrics';

const TOKEN = 'abcdefghijklmnopqrstuvwxyz234567';
const to = (purpose: string, token = TOKEN): string => `${purpose}+${token}@roomcast.test`;
const MAX_BYTES = 64 * 1024;

let listener: LmtpListener | null = null;
let metrics: Metrics;
afterEach(async () => {
  await listener?.stop();
  listener = null;
});

async function listen(process: (recipient: string, mail: ReceivedMail) => Promise<InboundOutcome>, allow = ['127.0.0.1', '::1']): Promise<LmtpListener> {
  metrics = createMetrics(async () => 0);
  listener = new LmtpListener({
    host: '127.0.0.1',
    port: 0,
    allow,
    domain: 'roomcast.test',
    maxBytes: MAX_BYTES,
    processor: { process: (mail, recipient) => process(recipient, mail) },
    metrics,
    logger: pino({ level: 'silent' }),
  });
  await listener.start();
  return listener;
}

/** How many answers the listener counted with this outcome and reason. */
async function counted(outcome: string, reason: string): Promise<number> {
  const metric = await metrics.inboundMail.get();
  return metric.values.filter((v) => v.labels.outcome === outcome && v.labels.reason === reason).reduce((n, v) => n + v.value, 0);
}

/** Each recipient's answer code, in order. */
async function answers(l: LmtpListener, recipients: string[], text = 'hello'): Promise<Record<string, number>> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: l.port, lmtp: true, ignoreTLS: true });
  try {
    const info = await transport.sendMail({ from: 'minji@example.test', to: recipients, subject: 'Re: hi', text });
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

  it('answers 451 when Postgres or Redis is away (unavailable), and when the processor fails in a way it did not expect (error)', async () => {
    const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const l = await listen(async (recipient) => {
      throw recipient === to('reply') ? down : new TypeError('a bug');
    });
    expect(await answers(l, [to('reply'), to('cmd')])).toEqual({ [to('reply')]: 451, [to('cmd')]: 451 });
    expect([await counted('deferred', 'unavailable'), await counted('deferred', 'error')]).toEqual([1, 1]);
  });

  it('answers 550 to a failure the mail itself causes, which a retry would only repeat', async () => {
    const refusedBySendPath = new ValidationError('body.text: too short');
    const refusedByPostgres = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' });
    const l = await listen(async (recipient) => {
      throw recipient === to('reply') ? refusedBySendPath : refusedByPostgres;
    });
    expect(await answers(l, [to('reply'), to('cmd')])).toEqual({ [to('reply')]: 550, [to('cmd')]: 550 });
    expect(await counted('refused', 'invalid')).toBe(2);
  });

  it('refuses at RCPT an address that is not one of ours in shape', async () => {
    const l = await listen(async () => ({ outcome: 'posted', reason: 'new', messageId: 'm' }));
    expect(await answers(l, ['someone@roomcast.test', to('reply')])).toEqual({ 'someone@roomcast.test': 550, [to('reply')]: 250 });
  });

  it('refuses a mail over the size limit with 552 without handing it to the processor', async () => {
    let processed = 0;
    const l = await listen(async () => {
      processed++;
      return { outcome: 'posted', reason: 'new', messageId: 'm' };
    });
    expect(await answers(l, [to('reply')], 'x'.repeat(MAX_BYTES + 1))).toEqual({ [to('reply')]: 552 });
    expect(processed).toBe(0);
  });

  it('parses the body only when asked, once for all recipients', async () => {
    const seen: Promise<unknown>[] = [];
    const l = await listen(async (recipient, mail) => {
      expect(mail.headers.first('subject')).toBe('Re: hi');
      if (recipient !== to('cmd')) seen.push(mail.parsed());
      return { outcome: 'discarded', reason: 'from_mismatch' };
    });
    await answers(l, [to('reply'), to('cmd'), to('bounces')]);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(seen[1]);
    expect((await seen[0]) as { text?: string }).toMatchObject({ text: 'hello\n' });
  });

  it('cuts a client that ROOMCAST_LMTP_ALLOW does not name at connect', async () => {
    let processed = 0;
    const l = await listen(async () => {
      processed++;
      return { outcome: 'posted', reason: 'new', messageId: 'm' };
    }, ['10.0.0.0/8']);
    await expect(answers(l, [to('reply')])).rejects.toMatchObject({ responseCode: 554 });
    expect(processed).toBe(0);
  });

  it('waits at stop for mail being processed before it resolves', async () => {
    let release = (): void => {};
    let finished = false;
    let started = (): void => {};
    const processing = new Promise<void>((resolve) => {
      started = resolve;
    });
    const l = await listen(async () => {
      started();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      finished = true;
      return { outcome: 'posted', reason: 'new', messageId: 'm' };
    });
    const sent = answers(l, [to('reply')]).catch(() => null);
    await processing;
    let stopped = false;
    const stopping = l.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(finished).toBe(true);
    await sent;
    listener = null;
  });
});
