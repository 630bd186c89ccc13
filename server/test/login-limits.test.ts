import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressKey } from '../src/auth/attempt-limiter';
import { ApiClient, type ApiResponse } from '../../testkit/api-client';
import { testConfig } from '../../testkit/test-config';
import { PASSWORD, freshAddress, makeUser, startHarness, uniqueName, type Harness, type TestUser } from '../../testkit/harness';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

function login(username: string, password: string, from: string, server = h): Promise<ApiResponse> {
  return new ApiClient(server.server.url).request('POST', '/api/auth/login', JSON.stringify({ username, password }), { 'x-forwarded-for': from });
}

function expectTooMany(res: ApiResponse, maxSeconds: number): void {
  expect(res.status).toBe(429);
  expect(res.body.error.code).toBe('too_many_attempts');
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(maxSeconds);
}

describe('login limits', () => {
  const { perAccountAddress, perAccount } = testConfig().loginLimits;

  it('answers 30 wrong passwords in one second with 401 up to the limit, then 429 with Retry-After', async () => {
    const victim = await makeUser(h, 'learner');
    const attacker = freshAddress();
    const results = await Promise.all(Array.from({ length: 30 }, () => login(victim.username, 'wrong-guess', attacker)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(perAccountAddress.maxFailures);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30 - perAccountAddress.maxFailures);
    for (const r of results.filter((x) => x.status === 429)) expectTooMany(r, perAccountAddress.windowSeconds);
    // Even the right password waits now, from that address.
    expectTooMany(await login(victim.username, PASSWORD, attacker), perAccountAddress.windowSeconds);

    // The owner, from any other address, logs in at once: the attacker's refused tries were not counted against the account.
    const owner = await login(victim.username, PASSWORD, freshAddress());
    expect(owner.status).toBe(200);
  });

  it('treats unknown usernames the same, so the limit does not reveal which accounts exist', async () => {
    const from = freshAddress();
    const statuses: number[] = [];
    const nobody = `nobody-${randomBytes(4).toString('hex')}`;
    for (let i = 0; i <= perAccountAddress.maxFailures; i++) statuses.push((await login(nobody, 'x', from)).status);
    expect(statuses).toEqual([...Array<number>(perAccountAddress.maxFailures).fill(401), 429]);
  });

  it('clears the count of an address once it logs in successfully', async () => {
    const user = await makeUser(h, 'learner');
    const from = freshAddress();
    for (let i = 0; i < perAccountAddress.maxFailures - 1; i++) expect((await login(user.username, 'typo', from)).status).toBe(401);
    expect((await login(user.username, PASSWORD, from)).status).toBe(200);
    for (let i = 0; i < perAccountAddress.maxFailures; i++) expect((await login(user.username, 'typo', from)).status).toBe(401);
    expect((await login(user.username, 'typo', from)).status).toBe(429);
  });

  it('locks an account guessed at from many addresses only briefly, and never for an address it logged in from', async () => {
    const victim: TestUser = await makeUser(h, 'learner');
    const home = freshAddress();
    expect((await login(victim.username, PASSWORD, home)).status).toBe(200);
    // Guesses spread over addresses, each under its own limit, until the account-wide limit.
    const guesses = Array.from({ length: perAccount.maxFailures }, (_, i) => ({ from: freshAddress(), i }));
    for (const g of guesses) expect((await login(victim.username, `guess-${g.i}`, g.from)).status).toBe(401);
    const again = await login(victim.username, 'guess-more', freshAddress());
    // Bounded: never longer than the account window (a minute by default).
    expectTooMany(again, perAccount.windowSeconds);
    expectTooMany(await login(victim.username, PASSWORD, freshAddress()), perAccount.windowSeconds);
    // The owner at home is not locked out at all.
    expect((await login(victim.username, PASSWORD, home)).status).toBe(200);
  });

  it('limits one address across accounts (password spraying)', async () => {
    // A small per-address limit, so the test needs few password hashes.
    const spray = await startHarness({ config: testConfig({ ROOMCAST_LOGIN_MAX_FAILURES_PER_ADDRESS: '12' }) });
    try {
      const account = async (): Promise<string> => {
        const username = uniqueName('spray');
        await spray.server.services.users.create({ username, displayName: username, role: 'learner', password: PASSWORD });
        return username;
      };
      const sprayer = freshAddress();
      for (let i = 0; i < 12; i++) expect((await login(await account(), 'Spring2026!', sprayer, spray)).status).toBe(401);
      const next = await account();
      expectTooMany(await login(next, 'Spring2026!', sprayer, spray), 600);
      // The right password from that address is refused too until the window ends; elsewhere it works.
      expectTooMany(await login(next, PASSWORD, sprayer, spray), 600);
      expect((await login(next, PASSWORD, freshAddress(), spray)).status).toBe(200);
    } finally {
      await spray.close();
    }
  });

  it('checks the current password of a password change under the same limits', async () => {
    const user = await makeUser(h, 'learner');
    const from = freshAddress();
    const api = new ApiClient(h.server.url, user.token);
    const change = (current: string): Promise<ApiResponse> =>
      api.request('POST', '/api/auth/password', JSON.stringify({ currentPassword: current, newPassword: 'a-new-password-2' }), { 'x-forwarded-for': from });
    for (let i = 0; i < perAccountAddress.maxFailures; i++) expect((await change(`wrong-${i}`)).status).toBe(401);
    expectTooMany(await change(PASSWORD), perAccountAddress.windowSeconds);
  });

  it('groups IPv6 clients by /64 and unwraps IPv4-mapped addresses', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
    expect(addressKey('2001:db8:1:2::1')).not.toBe(addressKey('2001:db8:1:3::1'));
    expect(addressKey('2001:0db8:0001:0002::')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(addressKey('203.0.113.9')).toBe('203.0.113.9');
  });
});
