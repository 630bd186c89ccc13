import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../runtime/config';

describe('configuration', () => {
  it('has defaults that work on one machine', () => {
    const c = loadConfig({});
    expect(c.app.port).toBe(3000);
    expect(c.rabbitmq.nodes.map((n) => n.name)).toEqual(['roomcast-1@localhost', 'roomcast-2@localhost', 'roomcast-3@localhost']);
    expect(new Set(c.rabbitmq.nodes.flatMap((n) => [n.amqpPort, n.webStompPort, n.stompPort, n.distPort])).size).toBe(12);
  });

  it('names a bad value', () => {
    expect(() => loadConfig({ ROOMCAST_PG_PORT: 'five' })).toThrow(ConfigError);
    expect(() => loadConfig({ ROOMCAST_PG_PORT: '70000' })).toThrow(/ROOMCAST_PG_PORT/);
    expect(() => loadConfig({ ROOMCAST_LOG_LEVEL: 'loud' })).toThrow(/ROOMCAST_LOG_LEVEL/);
  });

  it('takes Postgres and Redis on other hosts by URL (then infra does not run them), and secrets from files', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-secrets-'));
    try {
      const dbFile = path.join(dir, 'db');
      writeFileSync(dbFile, 'postgres://roomcast:s3cret@db.school.internal:5432/roomcast?sslmode=require\n');
      writeFileSync(path.join(dir, 'link'), 'a-link-secret-from-a-file-0123\n');
      const c = loadConfig({ ROOMCAST_DATABASE_URL_FILE: dbFile, ROOMCAST_REDIS_URL: 'rediss://:pw@cache.school.internal:6380', ROOMCAST_LINK_SECRET_FILE: path.join(dir, 'link') });
      expect(c.postgres).toMatchObject({ url: 'postgres://roomcast:s3cret@db.school.internal:5432/roomcast?sslmode=require', managed: false });
      expect(c.redis).toMatchObject({ url: 'rediss://:pw@cache.school.internal:6380', managed: false });
      expect(c.linkSecret).toBe('a-link-secret-from-a-file-0123');
      expect(loadConfig({}).postgres.managed).toBe(true);
      expect(() => loadConfig({ ROOMCAST_DATABASE_URL: 'mysql://x@y/z' })).toThrow(/ROOMCAST_DATABASE_URL: a postgres:\/\/ URL/);
      expect(() => loadConfig({ ROOMCAST_REDIS_URL: 'http://cache' })).toThrow(/ROOMCAST_REDIS_URL/);
      expect(() => loadConfig({ ROOMCAST_DATABASE_URL: 'postgres://a@b/c', ROOMCAST_DATABASE_URL_FILE: dbFile })).toThrow(/not both/);
      expect(() => loadConfig({ ROOMCAST_ADMIN_TOKEN_FILE: path.join(dir, 'missing') })).toThrow(/ROOMCAST_ADMIN_TOKEN_FILE: cannot read/);
      // Only secrets come from files: any other *_FILE is an unknown setting.
      expect(() => loadConfig({ ROOMCAST_APP_PORT_FILE: dbFile })).toThrow(/unknown setting ROOMCAST_APP_PORT_FILE/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown ROOMCAST_ setting, so a typo never falls back to a default', () => {
    expect(() => loadConfig({ ROOMCAST_APP_PROT: '8080' })).toThrow(/unknown setting ROOMCAST_APP_PROT/);
  });

  it('defaults the inbound domain to the mail domain, and refuses a bad inbound setting', () => {
    expect(loadConfig({}).inbound).toMatchObject({ domain: 'roomcast.localhost', lmtpPort: 25026, maxPerHour: 30 });
    expect(loadConfig({ ROOMCAST_MAIL_DOMAIN: 'Mail.Example.org' }).inbound.domain).toBe('mail.example.org');
    expect(loadConfig({ ROOMCAST_INBOUND_DOMAIN: 'in.example.org' }).inbound.domain).toBe('in.example.org');
    expect(() => loadConfig({ ROOMCAST_INBOUND_DOMAIN: 'in example' })).toThrow(/ROOMCAST_INBOUND_DOMAIN/);
    expect(() => loadConfig({ ROOMCAST_INBOUND_MAX_BYTES: '1000' })).toThrow(/ROOMCAST_INBOUND_MAX_BYTES/);
    expect(() => loadConfig({ ROOMCAST_LMTP_PORT: '0' })).toThrow(/ROOMCAST_LMTP_PORT/);
  });

  it('keeps the LMTP listener on loopback for loopback clients unless told otherwise, and checks the inbound security settings', () => {
    expect(loadConfig({}).inbound).toMatchObject({ lmtpHost: '127.0.0.1', lmtpAllow: ['127.0.0.1', '::1'], authservId: null, addressRotateMs: 90 * 24 * 3600_000 });
    const set = loadConfig({ ROOMCAST_LMTP_HOST: '10.0.0.5', ROOMCAST_LMTP_ALLOW: '10.0.0.0/24, fd00::/8', ROOMCAST_INBOUND_AUTHSERV_ID: 'MX.Example.org' });
    expect(set.inbound).toMatchObject({ lmtpHost: '10.0.0.5', lmtpAllow: ['10.0.0.0/24', 'fd00::/8'], authservId: 'mx.example.org' });
    expect(() => loadConfig({ ROOMCAST_LMTP_HOST: 'localhost' })).toThrow(/ROOMCAST_LMTP_HOST/);
    for (const allow of ['10.0.0.0/33', 'mx.example.org', '10.0.0.0/8/1', '']) expect(() => loadConfig({ ROOMCAST_LMTP_ALLOW: allow }), allow).toThrow(/ROOMCAST_LMTP_ALLOW/);
    expect(() => loadConfig({ ROOMCAST_INBOUND_AUTHSERV_ID: 'mx; dmarc=pass' })).toThrow(/ROOMCAST_INBOUND_AUTHSERV_ID/);
    expect(() => loadConfig({ ROOMCAST_INBOUND_ADDRESS_ROTATE_DAYS: '0' })).toThrow(/ROOMCAST_INBOUND_ADDRESS_ROTATE_DAYS/);
  });

  it('reads a valid override', () => {
    expect(loadConfig({ ROOMCAST_APP_PORT: '8081' }).app.port).toBe(8081);
  });

  it('gives the test profile its own ports and data folder, with explicit settings still winning', () => {
    const dev = loadConfig({});
    const test = loadConfig({ ROOMCAST_PROFILE: 'test' });
    const ports = (c: typeof dev): number[] => [
      c.postgres.port,
      c.redis.port,
      c.mail.port,
      c.inbound.lmtpPort,
      c.app.port,
      c.brokerAuth.port,
      c.proxy.httpsPort,
      c.proxy.httpPort,
      c.proxy.adminPort,
      c.rabbitmq.epmdPort,
      ...c.rabbitmq.nodes.flatMap((n) => [n.amqpPort, n.webStompPort, n.stompPort, n.prometheusPort, n.managementPort, n.distPort]),
    ];
    const shared = ports(test).filter((p) => ports(dev).includes(p));
    expect(shared).toEqual([]);
    expect(test.dataDir).not.toBe(dev.dataDir);
    expect(loadConfig({ ROOMCAST_PROFILE: 'test', ROOMCAST_APP_PORT: '8081' }).app.port).toBe(8081);
    expect(() => loadConfig({ ROOMCAST_PROFILE: 'staging' })).toThrow(/ROOMCAST_PROFILE/);
  });
});
