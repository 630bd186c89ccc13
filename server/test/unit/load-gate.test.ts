import { describe, expect, it } from 'vitest';
import { LoadGate, type GateLimits } from '../../src/campaigns/load-gate';
import { smtpFailure } from '../../src/mail/smtp-transport';

const limits: GateLimits = { maxQueue: 100, maxErrorRatio: 0.2, maxLatencyMs: 500, window: 20, firstWaitMs: 1000, maxWaitMs: 8000, pauseAfterMs: 30_000, probeEveryMs: 5000 };
const SEND = { action: 'send', probe: false };
const PROBE = { action: 'send', probe: true };

describe('the bulk-mail load gate', () => {
  it('reads SMTP failures as the seed does: 421/452 slow down, other 4xx defer; a 5xx refuses the address only at RCPT TO', () => {
    const kind = (responseCode: number | undefined, command?: string) => smtpFailure(Object.assign(new Error('x'), { responseCode, command })).kind;
    expect([kind(421, 'RCPT TO'), kind(452, 'RCPT TO'), kind(451, 'RCPT TO'), kind(450, 'MAIL FROM'), kind(undefined, 'CONN')]).toEqual(['slow_down', 'slow_down', 'deferred', 'deferred', 'timeout']);
    expect(kind(550, 'RCPT TO')).toBe('refused');
    // A refused login, sender or content says nothing of the address: no suppression, and the gate counts it.
    expect([kind(535, 'AUTH PLAIN'), kind(550, 'MAIL FROM'), kind(554, 'CONN'), kind(552, 'DATA')]).toEqual(['relay_error', 'relay_error', 'relay_error', 'relay_error']);
  });

  it('keeps judging the last sends across healthy looks: failures spread over small batches still add up', () => {
    const g = new LoadGate(limits);
    let decision = g.check(null, 0);
    // Batches of two, one accepted and one timed out: 50 % failures, never three in a row.
    for (let t = 1; t <= 10 && decision.action === 'send'; t++) {
      g.observe('accepted', 20, t);
      g.observe('timeout', 20, t);
      decision = g.check(null, t);
    }
    expect(decision).toMatchObject({ action: 'wait', reason: expect.stringContaining('% of the last 10 sends failed') });
  });

  it('counts a relay that refuses our login as failing, and ignores a refused address', () => {
    const g = new LoadGate(limits);
    for (let i = 0; i < 3; i++) g.observe('relay_error', 20, i);
    expect(g.check(null, 10)).toMatchObject({ action: 'wait', reason: expect.stringContaining('relay_error') });
    const h = new LoadGate(limits);
    for (let i = 0; i < 20; i++) h.observe('refused', 20, i);
    expect(h.check(null, 10)).toEqual(SEND);
  });

  it('sends while the server is healthy', () => {
    const g = new LoadGate(limits);
    for (let i = 0; i < 30; i++) g.observe('accepted', 20, i);
    expect(g.check(10, 100)).toEqual(SEND);
  });

  it('waits, doubling, while the queue is over its limit, and sends again once it drains', () => {
    const g = new LoadGate(limits);
    const waits = [0, 1, 2, 3, 4].map((i) => g.check(150, i * 1000));
    expect(waits.map((d) => (d.action === 'wait' ? d.waitMs : d.action))).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(waits[0]).toMatchObject({ reason: expect.stringContaining('150 messages') });
    expect(g.check(20, 6000)).toEqual(SEND);
    // Healthy again: the next trouble starts from the first wait.
    expect(g.check(150, 7000)).toMatchObject({ action: 'wait', waitMs: 1000 });
  });

  it('holds sending after a 421 for one wait, then sends', () => {
    const g = new LoadGate(limits);
    g.observe('slow_down', 30, 0);
    expect(g.check(null, 10)).toMatchObject({ action: 'wait', reason: expect.stringContaining('slow down') });
    expect(g.check(null, 2500)).toEqual(SEND);
  });

  it('after a wait for failed sends, lets one probe through: accepted, it sends again; refused, the next wait doubles', () => {
    const g = new LoadGate(limits);
    for (let i = 0; i < 20; i++) g.observe(i % 2 === 0 ? 'timeout' : 'accepted', 20, i);
    expect(g.check(null, 100)).toMatchObject({ action: 'wait', waitMs: 1000 });
    expect(g.check(null, 500)).toMatchObject({ action: 'wait', waitMs: 2000 });
    // The wait is over: one mail, and nothing more until its answer is in.
    expect(g.check(null, 2600)).toEqual(PROBE);
    g.observe('timeout', 20, 2610);
    expect(g.check(null, 2620)).toMatchObject({ action: 'wait', waitMs: 4000 });
    expect(g.check(null, 6700)).toEqual(PROBE);
    g.observe('accepted', 20, 6710);
    expect(g.check(null, 6720)).toEqual(SEND);
  });

  it('reads three failures in a row as unhealthy before it has enough sends for a ratio', () => {
    const g = new LoadGate(limits);
    for (let i = 0; i < 3; i++) g.observe('timeout', 10_000, i);
    expect(g.check(null, 10)).toMatchObject({ action: 'wait', reason: expect.stringContaining('the last 3 sends failed') });
  });

  it('waits when too many recent sends failed or were slow, and ignores refusals for good', () => {
    const failing = new LoadGate(limits);
    for (let i = 0; i < 20; i++) failing.observe(i % 3 === 0 ? 'deferred' : 'accepted', 20, i);
    expect(failing.check(null, 100)).toMatchObject({ action: 'wait', reason: expect.stringContaining('% of the last 20 sends failed') });

    const slow = new LoadGate(limits);
    for (let i = 0; i < 20; i++) slow.observe('accepted', 900, i);
    expect(slow.check(null, 100)).toMatchObject({ action: 'wait', reason: expect.stringContaining('900 ms') });

    const refusals = new LoadGate(limits);
    for (let i = 0; i < 20; i++) refusals.observe(i % 2 === 0 ? 'refused' : 'accepted', 20, i);
    expect(refusals.check(null, 100)).toEqual(SEND);
  });

  it('pauses with the reason once unhealthy without a break for the deadline', () => {
    const g = new LoadGate(limits);
    let decision = g.check(500, 0);
    for (let t = 1000; decision.action !== 'pause' && t <= 40_000; t += 1000) decision = g.check(500, t);
    expect(decision).toEqual({ action: 'pause', reason: expect.stringMatching(/queue holds 500 messages.*for 30 s/) });
    expect(g.paused).toBe(true);
  });

  it('paused, probes every probeEveryMs once the queue allows it, and an accepted probe ends the pause', () => {
    const g = new LoadGate(limits);
    for (let t = 0; t <= 30_000; t += 1000) g.check(500, t);
    expect(g.paused).toBe(true);
    // Still loaded: no probe, the reason says so.
    expect(g.check(500, 36_000)).toMatchObject({ action: 'wait', reason: expect.stringMatching(/^paused: .*500 messages/) });
    // Drained, but the next probe time is a whole interval after the loaded look.
    expect(g.check(10, 36_500)).toMatchObject({ action: 'wait', waitMs: 4500 });
    expect(g.check(10, 41_000)).toEqual(PROBE);
    expect(g.check(10, 41_500)).toMatchObject({ action: 'wait', waitMs: 4500 });
    g.observe('timeout', 30, 41_500);
    expect(g.paused).toBe(true);
    expect(g.check(10, 46_000)).toEqual(PROBE);
    g.observe('accepted', 30, 46_010);
    expect(g.paused).toBe(false);
    expect(g.check(10, 46_020)).toEqual(SEND);
  });

  it('paused and still loaded at probe time, waits a whole interval again instead of looking every millisecond', () => {
    const g = new LoadGate(limits);
    for (let t = 0; t <= 30_000; t += 1000) g.check(500, t);
    expect(g.check(500, 36_000)).toMatchObject({ action: 'wait', waitMs: 5000 });
    expect(g.check(500, 41_000)).toMatchObject({ action: 'wait', waitMs: 5000 });
  });
});
