/**
 * Broker tokens: a fresh one for every CONNECT, a spare renewed at 80 % of its lifetime while
 * connected, and the spare used only when the app server cannot be reached at a reconnect.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BrokerToken } from '../../shared/protocol/messages';
import { BrokerTokens } from '../src/client/broker-tokens';
import { ApiError, NetworkError } from '../src/client/errors';
import { FakeFetch, apiError, deferred, json, type Reply } from './fake-fetch';

const START = Date.parse('2026-03-02T09:00:00.000Z');
const PATH = '/api/broker-token';

/** A token valid for `lifetimeMs` from now (fake time). */
const token = (n: number, lifetimeMs: number): BrokerToken => ({ login: 'u-1', passcode: `pass-${n}`, expiresAt: new Date(Date.now() + lifetimeMs).toISOString() });

/**
 * The broker-token route; `script` answers the nth request (from 1), by default a token valid for
 * 5 minutes.
 */
function tokenServer(script: (nth: number) => Reply | Promise<Reply> = (nth) => json(200, token(nth, 300_000))) {
  const server = new FakeFetch().on('POST', PATH, (_request, nth) => script(nth));
  const tokens = new BrokerTokens(server.api());
  return { server, tokens, requests: () => server.seen('POST', PATH).length };
}

const wait = (ms: number): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(START);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('a token for each CONNECT', () => {
  it('asks the server for a fresh token every time', async () => {
    const { tokens, requests } = tokenServer();
    expect((await tokens.forConnect()).passcode).toBe('pass-1');
    expect((await tokens.forConnect()).passcode).toBe('pass-2');
    expect(requests()).toBe(2);
  });

  it('renews nothing unless renewal was started', async () => {
    const { tokens, requests } = tokenServer();
    await tokens.forConnect();
    await wait(3_600_000);
    expect(requests()).toBe(1);
  });
});

describe('renewal', () => {
  it('renews the spare when 80 % of its lifetime has passed, then again for each new token', async () => {
    const { tokens, requests } = tokenServer((nth) => json(200, token(nth, nth === 1 ? 300_000 : 100_000)));
    tokens.startRenewal();
    await tokens.forConnect();
    await wait(239_999);
    expect(requests()).toBe(1);
    await wait(1);
    expect(requests()).toBe(2);
    // The renewed token lives 100 s: the next renewal 80 s later.
    await wait(79_999);
    expect(requests()).toBe(2);
    await wait(1);
    expect(requests()).toBe(3);
    tokens.stop();
  });

  it('a token fetched for a CONNECT restarts the count from its own lifetime', async () => {
    const { tokens, requests } = tokenServer();
    tokens.startRenewal();
    await tokens.forConnect();
    await wait(200_000);
    await tokens.forConnect(); // a reconnect: a new token, valid 300 s from now
    await wait(239_999);
    expect(requests()).toBe(2);
    await wait(1);
    expect(requests()).toBe(3);
    tokens.stop();
  });

  it('without a token yet, first renews after the retry delay', async () => {
    const { tokens, requests } = tokenServer();
    tokens.startRenewal();
    await wait(4_999);
    expect(requests()).toBe(0);
    await wait(1);
    expect(requests()).toBe(1);
    tokens.stop();
  });

  it('never renews sooner than every 5 s, however short-lived the token', async () => {
    const { tokens, requests } = tokenServer((nth) => json(200, token(nth, 2_000)));
    tokens.startRenewal();
    await tokens.forConnect();
    await wait(4_999);
    expect(requests()).toBe(1);
    await wait(1);
    expect(requests()).toBe(2);
    await wait(5_000);
    expect(requests()).toBe(3);
    tokens.stop();
  });

  it('after a failed renewal, keeps the old spare and tries again every 5 s', async () => {
    const { tokens, requests } = tokenServer((nth) => (nth === 1 ? json(200, token(1, 300_000)) : nth <= 3 ? 'network' : json(200, token(nth, 300_000))));
    tokens.startRenewal();
    await tokens.forConnect();
    await wait(240_000);
    expect(requests()).toBe(2); // failed
    await wait(4_999);
    expect(requests()).toBe(2);
    await wait(1);
    expect(requests()).toBe(3); // failed again
    await wait(5_000);
    expect(requests()).toBe(4); // pass-4, valid 300 s: the next renewal 240 s later
    await wait(239_999);
    expect(requests()).toBe(4);
    await wait(1);
    expect(requests()).toBe(5);
    tokens.stop();
  });

  it('keeps one renewal timer when a connect succeeds while a renewal is in flight and then fails, so stop ends all renewal', async () => {
    const pending = deferred<Reply>();
    const { tokens, requests } = tokenServer((nth) => (nth === 2 ? pending.promise : json(200, token(nth, 300_000))));
    tokens.startRenewal();
    await tokens.forConnect(); // 1
    await wait(240_000); // renewal 2 goes out and hangs
    expect(requests()).toBe(2);
    await tokens.forConnect(); // 3: a reconnect, which schedules the next renewal
    pending.resolve('network'); // renewal 2 fails afterwards and schedules a retry
    await wait(0);
    tokens.stop();
    await wait(3_600_000);
    expect(requests()).toBe(3);
  });

  it('stops renewing at stop, also when a renewal in flight fails or succeeds afterwards', async () => {
    for (const answer of ['network', json(200, token(9, 300_000))] as const) {
      const pending = deferred<Reply>();
      const { tokens, requests } = tokenServer((nth) => (nth === 1 ? json(200, token(1, 300_000)) : pending.promise));
      tokens.startRenewal();
      await tokens.forConnect();
      await wait(240_000);
      expect(requests()).toBe(2); // in flight
      tokens.stop();
      pending.resolve(answer);
      await wait(3_600_000);
      expect(requests()).toBe(2);
      expect(vi.getTimerCount()).toBe(0);
    }
  });
});

describe('the spare at a reconnect', () => {
  /** Connected once (pass-1, valid 300 s); every later request is answered with `failure`. */
  async function connectedThen(failure: Reply) {
    const t = tokenServer((nth) => (nth === 1 ? json(200, token(1, 300_000)) : failure));
    await t.tokens.forConnect();
    return t;
  }

  it('is used when the app server cannot be reached', async () => {
    const { tokens } = await connectedThen('network');
    await wait(60_000);
    expect((await tokens.forConnect()).passcode).toBe('pass-1');
  });

  it('is used when the app server answers 5xx', async () => {
    const { tokens } = await connectedThen(apiError(503, 'service_unavailable', 'redis is down'));
    expect((await tokens.forConnect()).passcode).toBe('pass-1');
  });

  it('is the newest token held: the renewed one', async () => {
    const { tokens } = tokenServer((nth) => (nth <= 2 ? json(200, token(nth, 300_000)) : 'network'));
    tokens.startRenewal();
    await tokens.forConnect();
    await wait(240_000); // renewed: pass-2
    expect((await tokens.forConnect()).passcode).toBe('pass-2');
    tokens.stop();
  });

  it('is not used with 5 s or less to live (the CONNECT takes time): the failure is reported', async () => {
    const { tokens } = await connectedThen('network');
    await wait(294_999);
    expect((await tokens.forConnect()).passcode).toBe('pass-1'); // 5.001 s left
    await wait(1);
    await expect(tokens.forConnect()).rejects.toBeInstanceOf(NetworkError); // 5 s left
  });

  it.each([
    ['the session is gone (401)', apiError(401, 'unauthenticated', 'log in again')],
    ['the user is no longer a member', apiError(403, 'not_a_member', 'not a member')],
  ])('is not used when %s: that failure is fatal', async (_what, failure) => {
    const { tokens } = await connectedThen(failure);
    await expect(tokens.forConnect()).rejects.toBeInstanceOf(ApiError);
  });

  it('does not exist before the first token: the failure is reported', async () => {
    const { tokens } = tokenServer(() => 'network');
    await expect(tokens.forConnect()).rejects.toBeInstanceOf(NetworkError);
  });
});
