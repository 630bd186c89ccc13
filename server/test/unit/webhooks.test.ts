import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../runtime/config';
import { newSecret, sign, signatureHeader } from '../../src/webhooks/signature';
import { classifyAddress, parseTargetUrl, resolveTarget, type Resolver, type WebhookTargetError } from '../../src/webhooks/target-guard';
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../src/webhooks/webhook-sender';
import { fixedSchedule } from '../../src/work/retry-schedule';

describe('webhook target addresses', () => {
  it.each([
    ['93.184.215.14', 'public'],
    ['8.8.8.8', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.0.1', 'private'],
    ['100.64.0.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['255.255.255.255', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['2606:4700:4700::1111', 'public'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fd12:3456::1', 'private'],
    ['fc00::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.1.1', 'private'],
    ['::ffff:93.184.215.14', 'public'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['2002:7f00:1::1', 'loopback'],
    ['::127.0.0.1', 'reserved'],
    ['not an address', 'reserved'],
  ])('%s is %s', (ip, kind) => {
    expect(classifyAddress(ip)).toBe(kind);
  });
});

describe('webhook target URLs', () => {
  const strict = { allowPrivate: false };
  const codeOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      return (err as WebhookTargetError).code;
    }
    return 'accepted';
  };

  it('accepts https, and plain http only when private targets are allowed', () => {
    expect(parseTargetUrl('https://hooks.example/x?y=1', strict).hostname).toBe('hooks.example');
    expect(codeOf(() => parseTargetUrl('http://hooks.example/x', strict))).toBe('webhook_url_invalid');
    expect(codeOf(() => parseTargetUrl('http://127.0.0.1:8080/x', { allowPrivate: true }))).toBe('accepted');
  });

  it('refuses what is not a plain https URL', () => {
    for (const url of ['hooks.example/x', 'ftp://hooks.example/x', 'https://u:p@hooks.example/x', 'https://hooks.example/x#frag', `https://hooks.example/${'a'.repeat(2048)}`]) {
      expect(codeOf(() => parseTargetUrl(url, strict)), url).toBe('webhook_url_invalid');
    }
  });

  it('refuses a name when any of its addresses is not public, and one that does not resolve', async () => {
    const names: Record<string, string[]> = { 'good.example': ['93.184.215.14', '2606:4700::1'], 'mixed.example': ['93.184.215.14', '192.168.1.9'], 'none.example': [] };
    const resolve: Resolver = async (host) => {
      const list = names[host];
      if (!list) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    };
    const check = (url: string, allowPrivate = false) => resolveTarget(new URL(url), { allowPrivate }, resolve);
    expect(await check('https://good.example/')).toHaveLength(2);
    await expect(check('https://mixed.example/')).rejects.toMatchObject({ code: 'webhook_target_forbidden', message: expect.stringContaining('192.168.1.9 is a private address (mixed.example resolves to it)') });
    await expect(check('https://none.example/')).rejects.toMatchObject({ code: 'webhook_target_unresolvable' });
    await expect(check('https://gone.example/')).rejects.toMatchObject({ code: 'webhook_target_unresolvable', message: expect.stringContaining('ENOTFOUND') });
    await expect(check('https://[::1]:8443/')).rejects.toMatchObject({ code: 'webhook_target_forbidden' });
    expect(await check('https://mixed.example/', true)).toHaveLength(2);
  });
});

describe('webhook signatures', () => {
  it('are what the standardwebhooks package verifies, with either secret during a rotation', () => {
    const [current, previous] = [newSecret(), newSecret()];
    expect(Buffer.from(current.slice('whsec_'.length), 'base64')).toHaveLength(32);
    const body = JSON.stringify({ id: 'evt_1', text: 'héllo 안녕' });
    const ts = Math.floor(Date.now() / 1000);
    const header = signatureHeader([current, previous], 'evt_1', ts, body);
    expect(header.split(' ')).toHaveLength(2);
    for (const secret of [current, previous]) {
      const wh = new Webhook(secret);
      expect(wh.verify(body, { 'webhook-id': 'evt_1', 'webhook-timestamp': String(ts), 'webhook-signature': header })).toEqual(JSON.parse(body));
      expect(sign(secret, 'evt_1', ts, body)).toBe(wh.sign('evt_1', new Date(ts * 1000), body));
    }
  });
});

describe('Retry-After', () => {
  it('reads seconds or a date, and is bounded', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('30', now)).toBe(30_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:02:00 GMT', now)).toBe(120_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('999999', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
  });
});

describe('the webhook retry schedule setting', () => {
  it('is Svix’s by default: eight attempts over about a day and a half', () => {
    const { scheduleMs } = loadConfig({}).webhooks;
    expect(scheduleMs).toEqual([5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    const schedule = fixedSchedule(scheduleMs, { jitter: 0 });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(schedule)).toEqual([...scheduleMs, null]);
  });

  it('takes a comma list, and refuses anything else at start-up', () => {
    expect(loadConfig({ ROOMCAST_WEBHOOK_SCHEDULE_MS: '100,200' }).webhooks.scheduleMs).toEqual([100, 200]);
    expect(() => loadConfig({ ROOMCAST_WEBHOOK_SCHEDULE_MS: '5s,10s' })).toThrow(ConfigError);
    expect(() => loadConfig({ ROOMCAST_WEBHOOK_ALLOW_PRIVATE: 'yes' })).toThrow(/ROOMCAST_WEBHOOK_ALLOW_PRIVATE/);
    expect(loadConfig({ ROOMCAST_PROFILE: 'test' }).webhooks.allowPrivate).toBe(true);
    expect(loadConfig({}).webhooks.allowPrivate).toBe(false);
  });
});
