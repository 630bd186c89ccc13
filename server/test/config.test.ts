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
  describe('several hosts (docs/operations.md)', () => {
    const cluster = {
      ROOMCAST_RABBITMQ_AMQP_URLS: 'amqp://10.0.0.11:5672, amqp://10.0.0.12:5672,amqp://10.0.0.13:5672',
      ROOMCAST_RABBITMQ_WEB_STOMP_URLS: 'ws://10.0.0.11:15674/ws,ws://10.0.0.12:15674/ws,ws://10.0.0.13:15674',
      ROOMCAST_RABBITMQ_COOKIE: 'ABCDEFGHIJKLMNOPQRSTUVWX',
    };

    it('names each broker node by its host, with the listeners of that host', () => {
      const c = loadConfig(cluster);
      expect(c.rabbitmq.longNames).toBe(true);
      expect(c.rabbitmq.cookie).toBe('ABCDEFGHIJKLMNOPQRSTUVWX');
      expect(c.rabbitmq.nodes.map((n) => [n.index, n.name, n.host, n.amqpPort, n.webStompUrl])).toEqual([
        [1, 'roomcast@10.0.0.11', '10.0.0.11', 5672, 'ws://10.0.0.11:15674/ws'],
        [2, 'roomcast@10.0.0.12', '10.0.0.12', 5672, 'ws://10.0.0.12:15674/ws'],
        [3, 'roomcast@10.0.0.13', '10.0.0.13', 5672, 'ws://10.0.0.13:15674/ws'],
      ]);
      // One machine: loopback, ports moved by the node's index, no long names.
      const local = loadConfig({});
      expect(local.rabbitmq.longNames).toBe(false);
      expect(local.rabbitmq.nodes.map((n) => n.webStompUrl)).toEqual(['ws://127.0.0.1:25680/ws', 'ws://127.0.0.1:25681/ws', 'ws://127.0.0.1:25682/ws']);
    });

    it('refuses broker lists that do not pair up, repeat a host, name no IPv4 address or carry credentials, and a broker host without the cookie', () => {
      const noCookie = { ...cluster, ROOMCAST_RABBITMQ_COOKIE: undefined };
      expect(() => loadConfig({ ...cluster, ROOMCAST_RABBITMQ_WEB_STOMP_URLS: 'ws://10.0.0.11:15674/ws' })).toThrow(/must be set together, one URL per node/);
      expect(() => loadConfig({ ROOMCAST_RABBITMQ_AMQP_URLS: 'amqp://10.0.0.11:5672' })).toThrow(/must be set together/);
      expect(() =>
        loadConfig({
          ...cluster,
          ROOMCAST_RABBITMQ_AMQP_URLS: 'amqp://10.0.0.11:5672,amqp://10.0.0.11:5673',
          ROOMCAST_RABBITMQ_WEB_STOMP_URLS: 'ws://10.0.0.11:15674/ws,ws://10.0.0.11:15675/ws',
        }),
      ).toThrow(/10.0.0.11 is listed twice/);
      expect(() => loadConfig({ ...cluster, ROOMCAST_RABBITMQ_AMQP_URLS: 'amqp://broker1:5672,amqp://10.0.0.12:5672,amqp://10.0.0.13:5672' })).toThrow(/ROOMCAST_RABBITMQ_AMQP_URLS.*an IP address/);
      expect(() => loadConfig({ ...cluster, ROOMCAST_RABBITMQ_AMQP_URLS: 'amqp://u:p@10.0.0.11:5672,amqp://10.0.0.12:5672,amqp://10.0.0.13:5672' })).toThrow(/no credentials/);
      expect(() => loadConfig({ ...cluster, ROOMCAST_RABBITMQ_WEB_STOMP_URLS: 'ws://10.0.0.12:15674/ws,ws://10.0.0.11:15674/ws,ws://10.0.0.13:15674/ws' })).toThrow(/node 1 is on 10.0.0.11/);
      expect(() => loadConfig({ ...cluster, ROOMCAST_RABBITMQ_WEB_STOMP_URLS: 'ws://10.0.0.11:15674/stomp,ws://10.0.0.12:15674/ws,ws://10.0.0.13:15674/ws' })).toThrow(/path must be \/ws/);
      expect(() => loadConfig(noCookie)).toThrow(/ROOMCAST_RABBITMQ_COOKIE/);
      // A host that runs no broker node does not need the cookie.
      expect(loadConfig({ ...noCookie, ROOMCAST_INFRA_ROLES: 'app' }).rabbitmq.cookie).toBeNull();
      expect(() => loadConfig({ ...cluster, ROOMCAST_RABBITMQ_COOKIE: 'short' })).toThrow(/ROOMCAST_RABBITMQ_COOKIE: 20 to 255/);
    });

    it('runs Postgres and Redis from their URLs on the data host, with the password those require off loopback', () => {
      const urls = { ROOMCAST_DATABASE_URL: 'postgres://rc:pw%2Fx@10.0.0.10:5433/rooms', ROOMCAST_REDIS_URL: 'redis://:rpw@10.0.0.10:6380' };
      const data = loadConfig({ ...urls, ROOMCAST_INFRA_ROLES: 'data' });
      expect(data.roles).toEqual(['data']);
      expect(data.postgres).toMatchObject({ host: '10.0.0.10', port: 5433, user: 'rc', password: 'pw/x', database: 'rooms', managed: true, setting: 'ROOMCAST_DATABASE_URL' });
      expect(data.redis).toMatchObject({ host: '10.0.0.10', port: 6380, password: 'rpw', managed: true, setting: 'ROOMCAST_REDIS_URL' });
      // Messages about infra's own name the port that moves it.
      expect([loadConfig({}).postgres.setting, loadConfig({}).redis.setting]).toEqual(['ROOMCAST_PG_PORT', 'ROOMCAST_REDIS_PORT']);
      // Another host's roles: the same URLs only say where they are.
      expect(loadConfig({ ...urls, ROOMCAST_INFRA_ROLES: 'app,proxy' }).postgres.managed).toBe(false);
      expect(() => loadConfig({ ROOMCAST_DATABASE_URL: 'postgres://rc@10.0.0.10:5432/rooms', ROOMCAST_INFRA_ROLES: 'data' })).toThrow(/reachable from other hosts and needs a password/);
      expect(() => loadConfig({ ROOMCAST_REDIS_URL: 'redis://10.0.0.10:6379', ROOMCAST_INFRA_ROLES: 'data' })).toThrow(/ROOMCAST_REDIS_URL: Redis listening on 10.0.0.10/);
      expect(() => loadConfig({ ROOMCAST_DATABASE_URL: 'postgres://rc:pw@db.internal/rooms', ROOMCAST_INFRA_ROLES: 'data' })).toThrow(/an IP address, not db.internal/);
      expect(() => loadConfig({ ROOMCAST_REDIS_URL: 'rediss://:pw@10.0.0.10:6379', ROOMCAST_INFRA_ROLES: 'data' })).toThrow(/without TLS/);
      // Loopback without a password stays the one-machine way.
      expect(loadConfig({ ROOMCAST_DATABASE_URL: 'postgres://rc@127.0.0.1:5432/rooms', ROOMCAST_INFRA_ROLES: 'all' }).postgres.managed).toBe(true);
    });

    it('reads roles, bind addresses and the proxy upstreams, and refuses bad ones', () => {
      expect(loadConfig({}).roles).toEqual(['data', 'broker', 'app', 'proxy']);
      expect(loadConfig({ ROOMCAST_INFRA_ROLES: 'broker, app,broker' }).roles).toEqual(['broker', 'app']);
      expect(() => loadConfig({ ROOMCAST_INFRA_ROLES: 'web' })).toThrow(/ROOMCAST_INFRA_ROLES.*one of all, data, broker, app, proxy/);
      const c = loadConfig({ ROOMCAST_APP_HOST: '10.0.0.11', ROOMCAST_APP_SERVERS: '2', ROOMCAST_BROKER_AUTH_HOST: '10.0.0.11' });
      expect(c.proxy.upstreams).toEqual(['http://10.0.0.11:3000', 'http://10.0.0.11:3001']);
      expect(c.brokerAuth.url).toBe('http://10.0.0.11:25800');
      expect(loadConfig({ ROOMCAST_PROXY_UPSTREAMS: 'http://10.0.0.11:3000/,http://10.0.0.12:3000' }).proxy.upstreams).toEqual(['http://10.0.0.11:3000', 'http://10.0.0.12:3000']);
      expect(loadConfig({ ROOMCAST_BROKER_AUTH_URL: 'http://10.0.0.11:25800/' }).brokerAuth.url).toBe('http://10.0.0.11:25800');
      expect(() => loadConfig({ ROOMCAST_APP_HOST: 'app1.internal' })).toThrow(/ROOMCAST_APP_HOST: must be an IPv4 address/);
      expect(() => loadConfig({ ROOMCAST_BROKER_AUTH_HOST: '::1' })).toThrow(/ROOMCAST_BROKER_AUTH_HOST: must be an IPv4 address/);
      expect(() => loadConfig({ ROOMCAST_BROKER_AUTH_URL: 'http://10.0.0.11:25800/?x=1' })).toThrow(/ROOMCAST_BROKER_AUTH_URL: an http:\/\/ URL without \? or #/);
      expect(() => loadConfig({ ROOMCAST_PROXY_UPSTREAMS: 'https://10.0.0.11:3000' })).toThrow(/ROOMCAST_PROXY_UPSTREAMS/);
    });
  });
});
