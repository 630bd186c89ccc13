/**
 * The one place that reads roomcast's environment variables.
 *
 * Every setting is a `ROOMCAST_*` variable with a default that works on one machine.
 * `loadConfig` validates them once, at start-up, and fails with a message that names the
 * bad variable. An unknown `ROOMCAST_*` variable is an error too, so a misspelled setting
 * never silently falls back to its default.
 */
import { isIP } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** The repository root, so data and templates are found wherever the process starts. */
/**
 * The checkout's root: the nearest folder with package.json above this module, whether it runs
 * from source (runtime/config.ts) or from the compiled bundle (dist/…).
 */
export const repoRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
})();

/**
 * Where a process's entry is: its TypeScript source (development, run with tsx), or with
 * ROOMCAST_COMPILED=true its JavaScript in dist/ (`npm run build`), run by node alone.
 */
export function entryOf(source: string): string {
  if (process.env.ROOMCAST_COMPILED !== 'true') return path.join(repoRoot, source);
  return path.join(repoRoot, 'dist', source.replace(/\.ts$/, '.js'));
}

// Defaults sit below Linux's ephemeral range (32768-60999): a port in it can be handed to some
// outgoing connection and then be taken when a service (re)starts its listener.
const port = z.coerce.number().int().min(1).max(65535);
/** `10.0.0.5`, `::1`, `10.0.0.0/8`, `fd00::/8`. */
const isIpOrCidr = (v: string): boolean => {
  const [address = '', bits, ...rest] = v.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
};
const positiveInt = z.coerce.number().int().positive();
/** A comma-separated list, each item trimmed. */
const list = z.string().transform((v) => v.split(',').map((item) => item.trim()));
/** An IP address (what a bind setting and a multi-host RabbitMQ URL must name). */
const ipAddress = z.string().refine((h) => isIP(h) !== 0, 'must be an IP address such as 127.0.0.1 or 10.0.0.5');
/** An IPv4 address: the bind settings that URLs are made from (`http://<host>:<port>`). */
const ipv4Address = z.string().refine((h) => isIP(h) === 4, 'must be an IPv4 address such as 127.0.0.1 or 10.0.0.5');
/** A URL of one of `protocols` whose host is an IP address, e.g. amqp://10.0.0.11:5672. */
const urlOnIp = (protocols: string[], example: string) =>
  z.string().refine((u) => {
    if (!URL.canParse(u)) return false;
    const url = new URL(u);
    return protocols.includes(url.protocol) && isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0 && url.username === '' && url.password === '';
  }, `each must be a URL such as ${example} (an IP address, no credentials)`);
/** What `infra start` runs on this host; `all` is the one-machine layout. */
export const INFRA_ROLES = ['data', 'broker', 'app', 'proxy'] as const;
export type InfraRole = (typeof INFRA_ROLES)[number];
/** An origin as a browser sends it in `Origin`: https, lower case, no path. */
const httpsOrigin = z
  .string()
  .refine((o) => URL.canParse(o) && new URL(o).protocol === 'https:' && new URL(o).origin === o, 'each must be an https origin such as https://rooms.example.org');

const schema = z.object({
  // Only chooses defaults (see TEST_PROFILE); read before the rest.
  ROOMCAST_PROFILE: z.enum(['dev', 'test']).default('dev'),
  // true: infra runs the app servers, the proxy and broker-auth from dist/ (`npm run build`) with node alone.
  ROOMCAST_COMPILED: z.enum(['true', 'false']).default('false'),
  // What infra starts on this host (docs/operations.md): data (Postgres, Redis, Exim), broker
  // (its RabbitMQ node and broker-auth), app (the app servers), proxy; all: everything, one machine.
  ROOMCAST_INFRA_ROLES: list
    .pipe(z.array(z.enum(['all', ...INFRA_ROLES], { error: `each must be one of all, ${INFRA_ROLES.join(', ')}` })).min(1))
    .transform((roles): InfraRole[] => (roles.includes('all') ? [...INFRA_ROLES] : [...new Set(roles as InfraRole[])]))
    .default([...INFRA_ROLES]),
  ROOMCAST_DATA_DIR: z.string().min(1).default(path.join(repoRoot, '.data')),
  ROOMCAST_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  ROOMCAST_PG_PORT: port.default(25432),
  ROOMCAST_PG_DATABASE: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'lower-case SQL identifier').default('roomcast'),
  ROOMCAST_PG_USER: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'lower-case SQL identifier').default('roomcast'),
  ROOMCAST_PG_POOL_SIZE: positiveInt.default(20),

  ROOMCAST_REDIS_PORT: port.default(26379),

  ROOMCAST_RABBITMQ_NODES: z.coerce.number().int().min(1).max(5).default(3),
  ROOMCAST_RABBITMQ_AMQP_PORT_BASE: port.default(25672),
  ROOMCAST_RABBITMQ_WEB_STOMP_PORT_BASE: port.default(25680),
  ROOMCAST_RABBITMQ_STOMP_PORT_BASE: port.default(25690),
  ROOMCAST_RABBITMQ_PROMETHEUS_PORT_BASE: port.default(25700),
  ROOMCAST_RABBITMQ_MANAGEMENT_PORT_BASE: port.default(25710),
  ROOMCAST_RABBITMQ_DIST_PORT_BASE: port.default(25720),
  ROOMCAST_RABBITMQ_EPMD_PORT: port.default(25369),
  ROOMCAST_BROKER_USER: z.string().min(1).default('roomcast-server'),
  ROOMCAST_BROKER_PASSWORD: z.string().min(8).default('roomcast-dev-broker-secret'),
  // The broker nodes on other hosts, one AMQP and one Web-STOMP URL each, in the same order;
  // node i is roomcast@<its AMQP host>. Unset: ROOMCAST_RABBITMQ_NODES nodes on loopback.
  ROOMCAST_RABBITMQ_AMQP_URLS: list.pipe(z.array(urlOnIp(['amqp:'], 'amqp://10.0.0.11:5672')).min(1).max(7)).optional(),
  ROOMCAST_RABBITMQ_WEB_STOMP_URLS: list.pipe(z.array(urlOnIp(['ws:'], 'ws://10.0.0.11:15674/ws')).min(1).max(7)).optional(),
  // The Erlang cookie every node of the cluster shares; unset: one made under the data folder.
  ROOMCAST_RABBITMQ_COOKIE: z.string().regex(/^[A-Za-z0-9]{20,255}$/, '20 to 255 letters and digits').optional(),

  // Dependencies elsewhere (docs/operations.md): unset, infra's local Postgres and Redis.
  ROOMCAST_DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/, error: 'a postgres:// URL, e.g. postgres://roomcast:secret@db.school.internal:5432/roomcast?sslmode=require' })
    .optional(),
  ROOMCAST_REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'a redis:// or rediss:// URL, e.g. rediss://:secret@cache.school.internal:6379' }).optional(),
  ROOMCAST_BROKER_AUTH_PORT: port.default(25800),
  ROOMCAST_BROKER_AUTH_HOST: ipv4Address.default('127.0.0.1'),
  // What the broker nodes call; unset: http://<ROOMCAST_BROKER_AUTH_HOST>:<ROOMCAST_BROKER_AUTH_PORT>.
  // The nodes append /auth/user and the like, so it has no query or fragment.
  ROOMCAST_BROKER_AUTH_URL: z
    .url({ protocol: /^https?$/, error: 'an http:// URL, e.g. http://127.0.0.1:25800' })
    .refine((u) => !/[?#]/.test(u), 'an http:// URL without ? or #, e.g. http://127.0.0.1:25800')
    .optional(),
  // The SMTP relay mail leaves through: in development and tests infra's own Exim on loopback.
  ROOMCAST_SMTP_HOST: z.string().min(1).default('127.0.0.1'),
  ROOMCAST_SMTP_PORT: port.default(25025),
  // none: plain SMTP (the local Exim); starttls: upgrade or fail; tls: TLS from the first byte (port 465).
  ROOMCAST_SMTP_TLS: z.enum(['none', 'starttls', 'tls']).default('none'),
  ROOMCAST_SMTP_USER: z.string().min(1).optional(),
  ROOMCAST_SMTP_PASSWORD: z.string().min(1).optional(),
  ROOMCAST_MAIL_FROM: z.string().min(3).default('roomcast <no-reply@roomcast.localhost>'),
  // The right-hand side of every Message-ID roomcast makes.
  ROOMCAST_MAIL_DOMAIN: z.string().regex(/^[a-z0-9.-]+$/i, 'must be a domain name').default('roomcast.localhost'),
  ROOMCAST_MAIL_TEMPLATES_DIR: z.string().min(1).default(path.join(repoRoot, 'server', 'mail-templates')),
  // Inbound mail (docs/inbound-mail.md). The MTA hands mail for the inbound domain to app server
  // i over LMTP on loopback port ROOMCAST_LMTP_PORT + i - 1, as app server i listens on APP_PORT + i - 1.
  ROOMCAST_LMTP_PORT: port.default(25026),
  // The address the LMTP listener binds; another than loopback when the MTA runs on another host.
  ROOMCAST_LMTP_HOST: ipAddress.default('127.0.0.1'),
  // Comma-separated addresses and CIDR ranges of the MTAs allowed to hand over mail; any other client is cut at connect.
  ROOMCAST_LMTP_ALLOW: list
    .pipe(z.array(z.string().refine(isIpOrCidr, 'each must be an IP address or a CIDR range such as 10.0.0.0/8')).min(1))
    .default(['127.0.0.1', '::1']),
  // The domain of reply+, cmd+ and bounces+ addresses; unset: ROOMCAST_MAIL_DOMAIN.
  ROOMCAST_INBOUND_DOMAIN: z.string().regex(/^[a-z0-9.-]+$/i, 'must be a domain name').optional(),
  // Larger mail is refused (552) before it is parsed: a reply is text; attachments are dropped anyway.
  ROOMCAST_INBOUND_MAX_BYTES: z.coerce.number().int().min(64 * 1024).max(100 * 1024 * 1024).default(10 * 1024 * 1024),
  // A reply or command address works this long after the mail that carried it was made.
  ROOMCAST_INBOUND_ADDRESS_TTL_DAYS: z.coerce.number().int().min(1).max(365).default(30),
  // New mails stop reusing an address this long after it was made and carry a new one, so none
  // works longer than this plus the TTL however often it is used.
  ROOMCAST_INBOUND_ADDRESS_ROTATE_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  // When set, a reply or command must carry an Authentication-Results header from this authserv-id
  // with dmarc=pass for the domain of the user's address; the MTA in front must strip incoming
  // Authentication-Results headers and add its own. Unset: no such check (infra's Exim checks nothing).
  ROOMCAST_INBOUND_AUTHSERV_ID: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'an authserv-id, usually the MTA host name such as mx.example.org').optional(),
  // Replies and commands one person may send per hour; more are deferred (451) and the MTA retries later.
  ROOMCAST_INBOUND_MAX_PER_HOUR: positiveInt.default(30),
  // The first retry of a mail the relay deferred (4xx, timeout); later ones back off to an hour.
  ROOMCAST_MAIL_RETRY_FIRST_MS: positiveInt.default(30_000),
  // Learners who have not opened a room for this long get one reminder of what they missed.
  ROOMCAST_REMINDER_AFTER_HOURS: positiveInt.default(72),
  ROOMCAST_REMINDER_INTERVAL_MS: positiveInt.default(10 * 60_000),
  // Signs the links in mails (unsubscribe); set it in production, and keep it: changing it voids links already sent.
  ROOMCAST_LINK_SECRET: z.string().min(16).default('roomcast-dev-link-secret-change-me'),
  // Where people open roomcast: links in mails point here. Unset: https://localhost:<https port>.
  ROOMCAST_PUBLIC_URL: httpsOrigin.optional(),
  // Bearer token of the operators' API (/api/admin/...); unset: that API is off.
  ROOMCAST_ADMIN_TOKEN: z.string().min(16).optional(),
  // Webhooks (docs/webhooks.md). Retry delays after a failed attempt, in ms: Svix's schedule
  // (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the first attempt), each ±20 % jitter.
  ROOMCAST_WEBHOOK_SCHEDULE_MS: z
    .string()
    .regex(/^\d{1,10}(,\d{1,10})*$/, 'a comma-separated list of delays in milliseconds, such as 5000,300000')
    .default('5000,300000,1800000,7200000,18000000,36000000,36000000')
    .transform((v) => v.split(',').map(Number)),
  ROOMCAST_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(15_000),
  // An endpoint whose every attempt has failed for this long is disabled and its owner mailed.
  ROOMCAST_WEBHOOK_DISABLE_AFTER_MS: positiveInt.default(5 * 24 * 3600_000),
  // Endpoint streams one app server delivers at once; a slow endpoint holds one of them, never more.
  ROOMCAST_WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(32),
  // true: webhooks may target loopback, private and link-local addresses and plain http (tests, development only: SSRF).
  ROOMCAST_WEBHOOK_ALLOW_PRIVATE: z.enum(['true', 'false']).default('false'),
  // Bulk announcements by e-mail (docs/campaigns.md). Ceilings on mails handed to the relay,
  // counted in Postgres across restarts and app servers.
  ROOMCAST_CAMPAIGN_RATE_PER_SECOND: z.coerce.number().int().min(1).max(10_000).default(20),
  ROOMCAST_CAMPAIGN_RATE_PER_HOUR: z.coerce.number().int().min(1).max(10_000_000).default(20_000),
  // The load gate: the local MTA's queue length, the relay's error ratio and median latency over
  // the last sends above which sending waits (backing off, doubling from 1 s to a minute); still
  // unhealthy after ROOMCAST_CAMPAIGN_PAUSE_AFTER_MS, campaigns pause and are probed with one
  // mail every ROOMCAST_CAMPAIGN_PROBE_EVERY_MS, resuming at the first one accepted.
  ROOMCAST_CAMPAIGN_MAX_QUEUE: z.coerce.number().int().min(0).default(500),
  ROOMCAST_CAMPAIGN_MAX_ERROR_RATIO: z.coerce.number().min(0).max(1).default(0.2),
  ROOMCAST_CAMPAIGN_MAX_LATENCY_MS: positiveInt.default(2000),
  ROOMCAST_CAMPAIGN_PAUSE_AFTER_MS: positiveInt.default(10 * 60_000),
  ROOMCAST_CAMPAIGN_PROBE_EVERY_MS: positiveInt.default(60_000),
  // A recipient the relay deferred (4xx) is tried again after this, backing off to 10 minutes.
  ROOMCAST_CAMPAIGN_RETRY_FIRST_MS: positiveInt.default(5000),
  // How to read the local MTA's queue length, run without a shell (split at spaces). Unset with
  // the local relay (SMTP host 127.0.0.1 or localhost): infra's Exim, `exim4 -C <data>/exim/exim.conf -bpc`.
  // 'none': no local MTA to ask; the gate goes by the SMTP answers alone.
  ROOMCAST_MAIL_QUEUE_COMMAND: z.string().trim().min(1).optional(),
  ROOMCAST_APP_PORT: port.default(3000),
  ROOMCAST_APP_SERVERS: z.coerce.number().int().min(1).max(8).default(2),
  // The address the app servers bind; another than loopback when the proxy runs on another host.
  ROOMCAST_APP_HOST: ipv4Address.default('127.0.0.1'),
  // The app servers the proxy forwards to; unset: this host's, http://<APP_HOST>:<APP_PORT + i>.
  ROOMCAST_PROXY_UPSTREAMS: list.pipe(z.array(urlOnIp(['http:'], 'http://10.0.0.11:3000')).min(1)).optional(),

  ROOMCAST_PROXY_HOST: z.string().min(1).default('127.0.0.1'),
  ROOMCAST_PROXY_HTTPS_PORT: port.default(8443),
  ROOMCAST_PROXY_HTTP_PORT: port.default(8080),
  ROOMCAST_PROXY_ADMIN_PORT: port.default(9180),
  ROOMCAST_PROXY_TLS_CERT: z.string().min(1).optional(),
  ROOMCAST_PROXY_TLS_KEY: z.string().min(1).optional(),
  // Unset: derived from the proxy's open-file limit (proxy/src/descriptor-budget.ts).
  ROOMCAST_PROXY_MAX_CONNECTIONS_PER_IP: positiveInt.optional(),
  ROOMCAST_PROXY_CONNECT_TIMEOUT_MS: positiveInt.default(5000),
  ROOMCAST_PROXY_MAX_SUBSCRIPTIONS: positiveInt.default(4),
  ROOMCAST_PROXY_MAX_FRAME_BYTES: z.coerce.number().int().min(1024).default(64 * 1024),
  // Comma-separated https origins; unset: https://localhost:<https port> and https://127.0.0.1:<https port>.
  ROOMCAST_PUBLIC_ORIGINS: list
    .pipe(z.array(httpsOrigin).min(1))
    .optional(),
  ROOMCAST_PROXY_MAX_HEADER_BYTES: positiveInt.default(16 * 1024),
  ROOMCAST_PROXY_IDLE_TIMEOUT_MS: positiveInt.default(60_000),
  ROOMCAST_PROXY_HEALTH_INTERVAL_MS: positiveInt.default(1500),

  ROOMCAST_SESSION_TTL_SECONDS: positiveInt.default(12 * 3600),
  // Login limits (server/src/auth/attempt-limiter.ts, docs/security.md). Strict per account and
  // address: one guesser gets 5 tries per 15 minutes, a person with typos is not hindered.
  ROOMCAST_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS: positiveInt.default(5),
  ROOMCAST_LOGIN_ACCOUNT_ADDRESS_WINDOW_SECONDS: positiveInt.default(15 * 60),
  // Loose per account, short window: guessing from many addresses is slowed to 20 tries a
  // minute, while the owner is locked out for at most a minute (and never from an address it
  // logged in from before).
  ROOMCAST_LOGIN_MAX_FAILURES_PER_ACCOUNT: positiveInt.default(20),
  ROOMCAST_LOGIN_ACCOUNT_WINDOW_SECONDS: positiveInt.default(60),
  // Per address across accounts (password spraying): high, because a whole class may share
  // one school NAT address and mistype passwords at 9:00.
  ROOMCAST_LOGIN_MAX_FAILURES_PER_ADDRESS: positiveInt.default(100),
  ROOMCAST_LOGIN_ADDRESS_WINDOW_SECONDS: positiveInt.default(10 * 60),
  ROOMCAST_BROKER_TOKEN_TTL_SECONDS: positiveInt.default(300),
  ROOMCAST_INSTRUCTOR_QUEUE_EXPIRES_MS: positiveInt.default(24 * 3600 * 1000),
  ROOMCAST_PUBLISH_TIMEOUT_MS: positiveInt.default(2000),
  ROOMCAST_OUTBOX_RELAY_AFTER_MS: positiveInt.default(5000),
  ROOMCAST_OUTBOX_RELAY_INTERVAL_MS: positiveInt.default(1000),
  // Event streams (docs/events.md, "Stream"). The heartbeat stays well inside the proxy's 30 s
  // cut of a silent response and any idle timeout on the way.
  ROOMCAST_STREAM_HEARTBEAT_MS: z.coerce.number().int().min(1000).max(20_000).default(15_000),
  ROOMCAST_STREAM_MAX_LIFETIME_MS: z.coerce.number().int().min(1000).default(30 * 60_000),
  ROOMCAST_STREAM_MAX_PER_USER: positiveInt.default(10),
});

type Env = z.infer<typeof schema>;

/** Typed, validated settings for every part of roomcast. */
export interface Config {
  /** What infra starts on this host. */
  roles: InfraRole[];
  dataDir: string;
  logLevel: Env['ROOMCAST_LOG_LEVEL'];
  /**
   * `url` is what every process connects to. `managed`: infra runs it on this host, listening on
   * `host`:`port` (from the URL when one is given, with its password); otherwise it is another host's.
   * `setting`: the one that says where it is, for messages (the URL, or the local port).
   */
  postgres: { host: string; port: number; database: string; user: string; password: string | null; poolSize: number; url: string; managed: boolean; setting: string };
  redis: { host: string; port: number; password: string | null; url: string; managed: boolean; setting: string };
  rabbitmq: {
    nodes: RabbitNode[];
    /** Nodes named by IP address (`roomcast@10.0.0.11`), on several hosts: Erlang long names. */
    longNames: boolean;
    /** The Erlang cookie the nodes share; null: made once under dataDir (one machine). */
    cookie: string | null;
    epmdPort: number;
    /** The app server's own broker user; the only one allowed to publish. */
    user: string;
    password: string;
  };
  /** `host`/`port`: where it listens; `url`: what the broker nodes call. */
  brokerAuth: { host: string; port: number; url: string };
  /**
   * Outgoing mail: the SMTP relay it is handed to. Locally that is infra's Exim, which delivers
   * every message into a Maildir under `dataDir` instead of sending it anywhere.
   */
  mail: {
    host: string;
    port: number;
    tls: 'none' | 'starttls' | 'tls';
    auth: { user: string; pass: string } | null;
    from: string;
    domain: string;
    templatesDir: string;
    retryFirstMs: number;
    reminderAfterMs: number;
    reminderIntervalMs: number;
  };
  /** Inbound mail: replies, commands and bounces the MTA hands over by LMTP (docs/inbound-mail.md). */
  inbound: {
    /** The domain of every address roomcast receives mail at. */
    domain: string;
    /** This app server's LMTP listener; the MTA knows app server i at lmtpPort + i - 1. */
    lmtpPort: number;
    /** The address the LMTP listener binds. */
    lmtpHost: string;
    /** Addresses and CIDR ranges of the clients the LMTP listener talks to. */
    lmtpAllow: string[];
    /** Authentication-Results must say dmarc=pass from this authserv-id; null: not checked. */
    authservId: string | null;
    /** How long after it was made an address is reused for new mails. */
    addressRotateMs: number;
    maxBytes: number;
    addressTtlMs: number;
    maxPerHour: number;
  };
  /** Where people open roomcast (an https origin); links in mails point here. */
  publicUrl: string;
  linkSecret: string;
  /** Bearer token of the operators' API; null: that API is off. */
  adminToken: string | null;
  /** Webhook delivery (docs/webhooks.md). */
  webhooks: {
    /** Delay before each retry after a failed attempt; when they are used up the event is marked failed. */
    scheduleMs: number[];
    timeoutMs: number;
    disableAfterMs: number;
    concurrency: number;
    /** Allows private, loopback and link-local targets and plain http: for tests and development only. */
    allowPrivate: boolean;
  };
  /** Bulk announcements by e-mail (docs/campaigns.md). */
  campaigns: {
    ratePerSecond: number;
    ratePerHour: number;
    maxQueue: number;
    maxErrorRatio: number;
    maxLatencyMs: number;
    pauseAfterMs: number;
    probeEveryMs: number;
    retryFirstMs: number;
    /** The command that prints the local MTA's queue length, as argv; null: none to ask. */
    queueCommand: string[] | null;
  };
  /** App server processes: `servers` of them on consecutive ports from `port`. */
  app: { host: string; port: number; servers: number };
  proxy: {
    host: string;
    /** The app servers it forwards to. */
    upstreams: string[];
    httpsPort: number;
    httpPort: number;
    adminPort: number;
    /** Production certificate and key; in development a self-signed pair is generated under dataDir. */
    tls: { cert: string; key: string } | null;
    /** Null: derived from the open-file limit (half of it is WebSockets, a quarter of those per address). */
    maxConnectionsPerIp: number | null;
    /** A WebSocket whose CONNECT has not been answered by then is closed. */
    connectTimeoutMs: number;
    /** SUBSCRIBEs one STOMP connection may hold at once. */
    maxSubscriptions: number;
    /** Largest STOMP frame (and WebSocket frame) a browser may send. */
    maxFrameBytes: number;
    /** Origins a WebSocket upgrade may come from; null: the proxy's own https URLs on localhost and 127.0.0.1. */
    publicOrigins: string[] | null;
    maxHeaderBytes: number;
    /** Closes a connection silent for this long; above the STOMP heart-beat (10 s) on purpose. */
    idleTimeoutMs: number;
    healthIntervalMs: number;
  };
  sessionTtlSeconds: number;
  /** Failed logins allowed per window before a 429; see server/src/auth/attempt-limiter.ts. */
  loginLimits: {
    perAccountAddress: { maxFailures: number; windowSeconds: number };
    perAccount: { maxFailures: number; windowSeconds: number };
    perAddress: { maxFailures: number; windowSeconds: number };
  };
  brokerTokenTtlSeconds: number;
  instructorQueueExpiresMs: number;
  publishTimeoutMs: number;
  outboxRelayAfterMs: number;
  outboxRelayIntervalMs: number;
  /** Event streams: a `: ping` comment this often, the end of a stream after this long, open streams per user. */
  streams: { heartbeatMs: number; maxLifetimeMs: number; maxPerUser: number };
}

/** One RabbitMQ node of the cluster: its host and listeners. */
export interface RabbitNode {
  index: number;
  name: string;
  /** The address every listener of the node binds and clients connect to. */
  host: string;
  amqpPort: number;
  webStompPort: number;
  /** `ws://host:port/ws`: what the proxy forwards browsers' WebSockets to. */
  webStompUrl: string;
  stompPort: number;
  prometheusPort: number;
  managementPort: number;
  distPort: number;
}

/** Raised when the environment holds a bad or unknown setting. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly code = 'config_invalid';
}

const LOOPBACK = '127.0.0.1';

/**
 * `ROOMCAST_PROFILE=test` (what `npm test` and the test helpers use): its own data folder and a
 * port for every service, so tests never touch what `npm start` runs on the same machine, and
 * never stop its broker nodes. Variables set explicitly still win.
 */
const TEST_PROFILE: Record<string, string> = {
  ROOMCAST_DATA_DIR: path.join(repoRoot, '.data-test'),
  ROOMCAST_PG_PORT: '24432',
  ROOMCAST_REDIS_PORT: '24379',
  ROOMCAST_RABBITMQ_EPMD_PORT: '24369',
  ROOMCAST_RABBITMQ_AMQP_PORT_BASE: '24672',
  ROOMCAST_RABBITMQ_WEB_STOMP_PORT_BASE: '24680',
  ROOMCAST_RABBITMQ_STOMP_PORT_BASE: '24690',
  ROOMCAST_RABBITMQ_PROMETHEUS_PORT_BASE: '24700',
  ROOMCAST_RABBITMQ_MANAGEMENT_PORT_BASE: '24710',
  ROOMCAST_RABBITMQ_DIST_PORT_BASE: '24720',
  ROOMCAST_BROKER_AUTH_PORT: '24800',
  ROOMCAST_SMTP_PORT: '24025',
  ROOMCAST_LMTP_PORT: '24026',
  ROOMCAST_APP_PORT: '24300',
  ROOMCAST_PROXY_HTTPS_PORT: '24443',
  ROOMCAST_PROXY_HTTP_PORT: '24080',
  ROOMCAST_PROXY_ADMIN_PORT: '24180',
  // Tests' webhook receivers listen on loopback over plain http.
  ROOMCAST_WEBHOOK_ALLOW_PRIVATE: 'true',
};

/**
 * The MTA queue command as argv. Unset with the local relay, infra's Exim is asked with its own
 * configuration file (the path infra/paths.ts gives it; infra/test/exim.test.ts checks they agree).
 */
function queueCommand(given: string | undefined, smtpHost: string, dataDir: string): string[] | null {
  if (given === 'none') return null;
  if (given !== undefined) return given.split(/\s+/);
  if (smtpHost !== LOOPBACK && smtpHost !== 'localhost') return null;
  return ['exim4', '-C', path.join(dataDir, 'exim', 'exim.conf'), '-bpc'];
}

/** Settings that may come from a file instead (`<NAME>_FILE`): what holds a secret. */
export const SECRET_SETTINGS = [
  'ROOMCAST_DATABASE_URL',
  'ROOMCAST_REDIS_URL',
  'ROOMCAST_BROKER_PASSWORD',
  'ROOMCAST_SMTP_PASSWORD',
  'ROOMCAST_LINK_SECRET',
  'ROOMCAST_ADMIN_TOKEN',
  'ROOMCAST_RABBITMQ_COOKIE',
] as const;

/**
 * `<NAME>_FILE` read into `<NAME>` (a mounted secret, as container platforms give them), the
 * trailing newline dropped. Both set, or a file that cannot be read, is a ConfigError naming both.
 */
function withSecretFiles(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of SECRET_SETTINGS) {
    const file = env[`${name}_FILE`];
    if (file === undefined) continue;
    if (env[name] !== undefined) throw new ConfigError(`set ${name} or ${name}_FILE, not both`);
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`${name}_FILE: cannot read ${file}: ${(err as Error).message}`);
    }
    delete out[`${name}_FILE`];
  }
  return out;
}

const isLoopback = (host: string): boolean => host === LOOPBACK || host === 'localhost' || host === '::1';

/** A dependency URL's host (an IPv6 one without its brackets), port and password. */
function urlParts(url: URL, defaultPort: number): { host: string; port: number; password: string | null } {
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || defaultPort), password: url.password === '' ? null : decodeURIComponent(url.password) };
}

/**
 * A URL that also says what infra runs on this host: its host is the address to listen on, and
 * a server reachable from other hosts must have a password.
 */
function checkServedHere(setting: string, service: string, host: string, password: string | null): void {
  if (isIP(host) === 0) throw new ConfigError(`${setting}: on the data host its host is the address ${service} listens on, an IP address, not ${host}`);
  if (password === null && !isLoopback(host)) {
    throw new ConfigError(`${setting}: ${service} listening on ${host} is reachable from other hosts and needs a password in the URL`);
  }
}

/**
 * Postgres from ROOMCAST_DATABASE_URL, or infra's local one. A URL with roles given explicitly
 * (the data host of several) is also what infra runs here: it listens on the URL's host and port
 * with its user and password, and a server reachable from other hosts must have a password.
 */
function postgresSettings(e: Env, rolesGiven: boolean): Omit<Config['postgres'], 'poolSize'> {
  const given = e.ROOMCAST_DATABASE_URL;
  const runsHere = e.ROOMCAST_INFRA_ROLES.includes('data');
  if (given === undefined) {
    const { ROOMCAST_PG_USER: user, ROOMCAST_PG_PORT: port, ROOMCAST_PG_DATABASE: database } = e;
    return { host: LOOPBACK, port, database, user, password: null, url: `postgres://${user}@${LOOPBACK}:${port}/${database}`, managed: runsHere, setting: 'ROOMCAST_PG_PORT' };
  }
  const url = new URL(given);
  const settings = {
    ...urlParts(url, 5432),
    database: decodeURIComponent(url.pathname.slice(1)) || 'postgres',
    user: decodeURIComponent(url.username) || 'postgres',
    url: given,
    managed: runsHere && rolesGiven,
    setting: 'ROOMCAST_DATABASE_URL',
  };
  if (settings.managed) {
    checkServedHere('ROOMCAST_DATABASE_URL', 'Postgres', settings.host, settings.password);
    if (!/^[a-z_][a-z0-9_]*$/.test(settings.user) || !/^[a-z_][a-z0-9_]*$/.test(settings.database)) {
      throw new ConfigError('ROOMCAST_DATABASE_URL: the user and database infra creates must be lower-case SQL identifiers');
    }
  }
  return settings;
}

/** Redis from ROOMCAST_REDIS_URL, or infra's local one; the same rule as postgresSettings. */
function redisSettings(e: Env, rolesGiven: boolean): Config['redis'] {
  const given = e.ROOMCAST_REDIS_URL;
  const runsHere = e.ROOMCAST_INFRA_ROLES.includes('data');
  if (given === undefined) {
    return { host: LOOPBACK, port: e.ROOMCAST_REDIS_PORT, password: null, url: `redis://${LOOPBACK}:${e.ROOMCAST_REDIS_PORT}`, managed: runsHere, setting: 'ROOMCAST_REDIS_PORT' };
  }
  const url = new URL(given);
  const settings = { ...urlParts(url, 6379), url: given, managed: runsHere && rolesGiven, setting: 'ROOMCAST_REDIS_URL' };
  if (settings.managed) {
    checkServedHere('ROOMCAST_REDIS_URL', 'Redis', settings.host, settings.password);
    if (url.protocol === 'rediss:') throw new ConfigError('ROOMCAST_REDIS_URL: infra runs Redis without TLS; rediss:// names a Redis run elsewhere');
  }
  return settings;
}

/**
 * The broker nodes: from the two URL lists (one node per host, long names on addresses), or
 * ROOMCAST_RABBITMQ_NODES nodes on loopback, each port moved by its index.
 */
function rabbitNodes(e: Env): { nodes: RabbitNode[]; longNames: boolean } {
  const amqp = e.ROOMCAST_RABBITMQ_AMQP_URLS;
  const webStomp = e.ROOMCAST_RABBITMQ_WEB_STOMP_URLS;
  const fixed = (i: number, offset: number) => ({
    index: i + 1,
    stompPort: e.ROOMCAST_RABBITMQ_STOMP_PORT_BASE + offset,
    prometheusPort: e.ROOMCAST_RABBITMQ_PROMETHEUS_PORT_BASE + offset,
    managementPort: e.ROOMCAST_RABBITMQ_MANAGEMENT_PORT_BASE + offset,
    distPort: e.ROOMCAST_RABBITMQ_DIST_PORT_BASE + offset,
  });
  if (amqp === undefined && webStomp === undefined) {
    const nodes = Array.from({ length: e.ROOMCAST_RABBITMQ_NODES }, (_, i) => {
      const webStompPort = e.ROOMCAST_RABBITMQ_WEB_STOMP_PORT_BASE + i;
      return {
        ...fixed(i, i),
        name: `roomcast-${i + 1}@localhost`,
        host: LOOPBACK,
        amqpPort: e.ROOMCAST_RABBITMQ_AMQP_PORT_BASE + i,
        webStompPort,
        webStompUrl: `ws://${LOOPBACK}:${webStompPort}/ws`,
      };
    });
    return { nodes, longNames: false };
  }
  if (amqp === undefined || webStomp === undefined || amqp.length !== webStomp.length) {
    throw new ConfigError('ROOMCAST_RABBITMQ_AMQP_URLS and ROOMCAST_RABBITMQ_WEB_STOMP_URLS must be set together, one URL per node each, in the same order');
  }
  const nodes = amqp.map((a, i) => {
    const amqpUrl = new URL(a);
    const wsUrl = new URL(webStomp[i] ?? '');
    const host = amqpUrl.hostname;
    // Erlang's distribution is told its interface as an IPv4 tuple (infra/rabbitmq-ctl.ts).
    if (isIP(host) !== 4) throw new ConfigError(`ROOMCAST_RABBITMQ_AMQP_URLS: node ${i + 1}'s host must be an IPv4 address, not ${host}`);
    if (wsUrl.hostname !== host) {
      throw new ConfigError(`ROOMCAST_RABBITMQ_WEB_STOMP_URLS: node ${i + 1} is on ${host} (its AMQP URL), not ${wsUrl.hostname}`);
    }
    if (!['/', '/ws'].includes(wsUrl.pathname)) throw new ConfigError(`ROOMCAST_RABBITMQ_WEB_STOMP_URLS: node ${i + 1}'s path must be /ws, RabbitMQ's Web-STOMP path`);
    const webStompPort = Number(wsUrl.port || 80);
    return {
      ...fixed(i, 0),
      name: `roomcast@${host}`,
      host,
      amqpPort: Number(amqpUrl.port || 5672),
      webStompPort,
      webStompUrl: `ws://${host}:${webStompPort}/ws`,
    };
  });
  const hosts = nodes.map((n) => n.host);
  const twice = hosts.find((h, i) => hosts.indexOf(h) !== i);
  if (twice !== undefined) throw new ConfigError(`ROOMCAST_RABBITMQ_AMQP_URLS: ${twice} is listed twice; each node has a host of its own`);
  return { nodes, longNames: true };
}

/** Reads and validates the environment once; throws ConfigError naming every bad variable. */
export function loadConfig(given: NodeJS.ProcessEnv = process.env): Config {
  const profile = given.ROOMCAST_PROFILE;
  if (profile !== undefined && profile !== 'dev' && profile !== 'test') {
    throw new ConfigError(`invalid configuration: ROOMCAST_PROFILE: must be dev or test, not ${JSON.stringify(profile)}`);
  }
  const env = withSecretFiles(profile === 'test' ? { ...TEST_PROFILE, ...given } : given);
  const known = new Set(Object.keys(schema.shape));
  const unknown = Object.keys(env).filter((k) => k.startsWith('ROOMCAST_') && !known.has(k));
  if (unknown.length > 0) {
    throw new ConfigError(`unknown setting ${unknown.join(', ')}; known settings are listed in README.md`);
  }
  if (Boolean(env.ROOMCAST_SMTP_USER) !== Boolean(env.ROOMCAST_SMTP_PASSWORD)) {
    throw new ConfigError('ROOMCAST_SMTP_USER and ROOMCAST_SMTP_PASSWORD must be set together');
  }
  if (Boolean(env.ROOMCAST_PROXY_TLS_CERT) !== Boolean(env.ROOMCAST_PROXY_TLS_KEY)) {
    throw new ConfigError('ROOMCAST_PROXY_TLS_CERT and ROOMCAST_PROXY_TLS_KEY must be set together');
  }
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  const rolesGiven = env.ROOMCAST_INFRA_ROLES !== undefined;
  const rabbitmq = rabbitNodes(e);
  if (rabbitmq.longNames && e.ROOMCAST_INFRA_ROLES.includes('broker') && e.ROOMCAST_RABBITMQ_COOKIE === undefined) {
    throw new ConfigError('ROOMCAST_RABBITMQ_COOKIE (or _FILE) must be set on a broker host: every node of a cluster on several hosts shares it');
  }
  const brokerAuthUrl = e.ROOMCAST_BROKER_AUTH_URL ?? `http://${e.ROOMCAST_BROKER_AUTH_HOST}:${e.ROOMCAST_BROKER_AUTH_PORT}`;
  return {
    roles: e.ROOMCAST_INFRA_ROLES,
    dataDir: path.resolve(e.ROOMCAST_DATA_DIR),
    logLevel: e.ROOMCAST_LOG_LEVEL,
    postgres: { ...postgresSettings(e, rolesGiven), poolSize: e.ROOMCAST_PG_POOL_SIZE },
    redis: redisSettings(e, rolesGiven),
    rabbitmq: {
      ...rabbitmq,
      cookie: e.ROOMCAST_RABBITMQ_COOKIE ?? null,
      epmdPort: e.ROOMCAST_RABBITMQ_EPMD_PORT,
      user: e.ROOMCAST_BROKER_USER,
      password: e.ROOMCAST_BROKER_PASSWORD,
    },
    brokerAuth: { host: e.ROOMCAST_BROKER_AUTH_HOST, port: e.ROOMCAST_BROKER_AUTH_PORT, url: brokerAuthUrl.replace(/\/$/, '') },
    mail: {
      host: e.ROOMCAST_SMTP_HOST,
      port: e.ROOMCAST_SMTP_PORT,
      tls: e.ROOMCAST_SMTP_TLS,
      auth: e.ROOMCAST_SMTP_USER && e.ROOMCAST_SMTP_PASSWORD ? { user: e.ROOMCAST_SMTP_USER, pass: e.ROOMCAST_SMTP_PASSWORD } : null,
      from: e.ROOMCAST_MAIL_FROM,
      domain: e.ROOMCAST_MAIL_DOMAIN,
      templatesDir: e.ROOMCAST_MAIL_TEMPLATES_DIR,
      retryFirstMs: e.ROOMCAST_MAIL_RETRY_FIRST_MS,
      reminderAfterMs: e.ROOMCAST_REMINDER_AFTER_HOURS * 3600_000,
      reminderIntervalMs: e.ROOMCAST_REMINDER_INTERVAL_MS,
    },
    inbound: {
      domain: (e.ROOMCAST_INBOUND_DOMAIN ?? e.ROOMCAST_MAIL_DOMAIN).toLowerCase(),
      lmtpPort: e.ROOMCAST_LMTP_PORT,
      lmtpHost: e.ROOMCAST_LMTP_HOST,
      lmtpAllow: e.ROOMCAST_LMTP_ALLOW,
      authservId: e.ROOMCAST_INBOUND_AUTHSERV_ID?.toLowerCase() ?? null,
      addressRotateMs: e.ROOMCAST_INBOUND_ADDRESS_ROTATE_DAYS * 24 * 3600_000,
      maxBytes: e.ROOMCAST_INBOUND_MAX_BYTES,
      addressTtlMs: e.ROOMCAST_INBOUND_ADDRESS_TTL_DAYS * 24 * 3600_000,
      maxPerHour: e.ROOMCAST_INBOUND_MAX_PER_HOUR,
    },
    publicUrl: e.ROOMCAST_PUBLIC_URL ?? `https://localhost:${e.ROOMCAST_PROXY_HTTPS_PORT}`,
    linkSecret: e.ROOMCAST_LINK_SECRET,
    adminToken: e.ROOMCAST_ADMIN_TOKEN ?? null,
    webhooks: {
      scheduleMs: e.ROOMCAST_WEBHOOK_SCHEDULE_MS,
      timeoutMs: e.ROOMCAST_WEBHOOK_TIMEOUT_MS,
      disableAfterMs: e.ROOMCAST_WEBHOOK_DISABLE_AFTER_MS,
      concurrency: e.ROOMCAST_WEBHOOK_CONCURRENCY,
      allowPrivate: e.ROOMCAST_WEBHOOK_ALLOW_PRIVATE === 'true',
    },
    campaigns: {
      ratePerSecond: e.ROOMCAST_CAMPAIGN_RATE_PER_SECOND,
      ratePerHour: e.ROOMCAST_CAMPAIGN_RATE_PER_HOUR,
      maxQueue: e.ROOMCAST_CAMPAIGN_MAX_QUEUE,
      maxErrorRatio: e.ROOMCAST_CAMPAIGN_MAX_ERROR_RATIO,
      maxLatencyMs: e.ROOMCAST_CAMPAIGN_MAX_LATENCY_MS,
      pauseAfterMs: e.ROOMCAST_CAMPAIGN_PAUSE_AFTER_MS,
      probeEveryMs: e.ROOMCAST_CAMPAIGN_PROBE_EVERY_MS,
      retryFirstMs: e.ROOMCAST_CAMPAIGN_RETRY_FIRST_MS,
      queueCommand: queueCommand(e.ROOMCAST_MAIL_QUEUE_COMMAND, e.ROOMCAST_SMTP_HOST, path.resolve(e.ROOMCAST_DATA_DIR)),
    },
    app: { host: e.ROOMCAST_APP_HOST, port: e.ROOMCAST_APP_PORT, servers: e.ROOMCAST_APP_SERVERS },
    proxy: {
      host: e.ROOMCAST_PROXY_HOST,
      upstreams:
        e.ROOMCAST_PROXY_UPSTREAMS?.map((u) => new URL(u).origin) ??
        Array.from({ length: e.ROOMCAST_APP_SERVERS }, (_, i) => `http://${e.ROOMCAST_APP_HOST}:${e.ROOMCAST_APP_PORT + i}`),
      httpsPort: e.ROOMCAST_PROXY_HTTPS_PORT,
      httpPort: e.ROOMCAST_PROXY_HTTP_PORT,
      adminPort: e.ROOMCAST_PROXY_ADMIN_PORT,
      tls: e.ROOMCAST_PROXY_TLS_CERT && e.ROOMCAST_PROXY_TLS_KEY ? { cert: e.ROOMCAST_PROXY_TLS_CERT, key: e.ROOMCAST_PROXY_TLS_KEY } : null,
      maxConnectionsPerIp: e.ROOMCAST_PROXY_MAX_CONNECTIONS_PER_IP ?? null,
      connectTimeoutMs: e.ROOMCAST_PROXY_CONNECT_TIMEOUT_MS,
      maxSubscriptions: e.ROOMCAST_PROXY_MAX_SUBSCRIPTIONS,
      maxFrameBytes: e.ROOMCAST_PROXY_MAX_FRAME_BYTES,
      publicOrigins: e.ROOMCAST_PUBLIC_ORIGINS ?? null,
      maxHeaderBytes: e.ROOMCAST_PROXY_MAX_HEADER_BYTES,
      idleTimeoutMs: e.ROOMCAST_PROXY_IDLE_TIMEOUT_MS,
      healthIntervalMs: e.ROOMCAST_PROXY_HEALTH_INTERVAL_MS,
    },
    sessionTtlSeconds: e.ROOMCAST_SESSION_TTL_SECONDS,
    loginLimits: {
      perAccountAddress: {
        maxFailures: e.ROOMCAST_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS,
        windowSeconds: e.ROOMCAST_LOGIN_ACCOUNT_ADDRESS_WINDOW_SECONDS,
      },
      perAccount: { maxFailures: e.ROOMCAST_LOGIN_MAX_FAILURES_PER_ACCOUNT, windowSeconds: e.ROOMCAST_LOGIN_ACCOUNT_WINDOW_SECONDS },
      perAddress: { maxFailures: e.ROOMCAST_LOGIN_MAX_FAILURES_PER_ADDRESS, windowSeconds: e.ROOMCAST_LOGIN_ADDRESS_WINDOW_SECONDS },
    },
    brokerTokenTtlSeconds: e.ROOMCAST_BROKER_TOKEN_TTL_SECONDS,
    instructorQueueExpiresMs: e.ROOMCAST_INSTRUCTOR_QUEUE_EXPIRES_MS,
    publishTimeoutMs: e.ROOMCAST_PUBLISH_TIMEOUT_MS,
    outboxRelayAfterMs: e.ROOMCAST_OUTBOX_RELAY_AFTER_MS,
    outboxRelayIntervalMs: e.ROOMCAST_OUTBOX_RELAY_INTERVAL_MS,
    streams: { heartbeatMs: e.ROOMCAST_STREAM_HEARTBEAT_MS, maxLifetimeMs: e.ROOMCAST_STREAM_MAX_LIFETIME_MS, maxPerUser: e.ROOMCAST_STREAM_MAX_PER_USER },
  };
}
