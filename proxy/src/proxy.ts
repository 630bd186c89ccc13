/**
 * The composition root of the TLS proxy: one public HTTPS port (HTTP to the app servers,
 * `/ws` upgraded to the Web-STOMP nodes), a plain-HTTP port that redirects to it, a loopback
 * admin port, and the health checks that decide where new connections go. Tests call
 * `createProxy` with port 0 and their own upstreams.
 */
import type http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import HttpProxy from 'http-proxy';
import { pino, type Logger } from 'pino';
import type { Config } from '../../runtime/config';
import { logDestination } from '../../runtime/log-destination';
import { createAdminServer } from './admin-server';
import { ClientConnections } from './client-connections';
import { connectionLimit } from './descriptor-budget';
import { ListenError, ProxyError } from './errors';
import { HealthChecker, httpProbe, tcpProbe } from './health-checks';
import { createHttpHandler } from './http-forwarding';
import { createProxyMetrics } from './metrics';
import { createRedirectServer } from './redirect-server';
import { dropSilentConnections } from './silent-connections';
import { loadTlsMaterial } from './tls-certificate';
import { UpstreamPool, type UpstreamSnapshot } from './upstreams';
import { WebSocketTunnels } from './websocket-tunnels';

/** The admin port never leaves the machine. */
const ADMIN_HOST = '127.0.0.1';
/** A client that has not finished its TLS handshake by then is dropped. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long shutdown waits for in-flight HTTP requests before cutting them. */
const DEFAULT_CLOSE_GRACE_MS = 10_000;

export interface UpstreamUrls {
  /** App servers: `http://host:port`. */
  app: readonly string[];
  /** Web-STOMP endpoints: `ws://host:port/ws`. */
  webStomp: readonly string[];
}

/** The upstreams the configuration describes: ROOMCAST_PROXY_UPSTREAMS (or the local app servers), every broker node. */
export function configuredUpstreams(config: Config): UpstreamUrls {
  return { app: config.proxy.upstreams, webStomp: config.rabbitmq.nodes.map((n) => n.webStompUrl) };
}

export interface ProxyOptions {
  /** Replaces the configured upstreams, e.g. with in-process app servers on random ports. */
  upstreams?: Partial<UpstreamUrls>;
  /** Replaces the configured ports; 0 picks a free one (read it back from `ports`). */
  ports?: Partial<ProxyPorts>;
  logger?: Logger;
}

export interface ProxyPorts {
  https: number;
  http: number;
  admin: number;
}

export interface Proxy {
  /** The public URL, e.g. `https://127.0.0.1:8443`. */
  httpsUrl: string;
  httpUrl: string;
  adminUrl: string;
  ports: ProxyPorts;
  /** The certificate served, so a person or a test can trust it. */
  certFile: string;
  /** True when this start made a new development certificate. */
  certGenerated: boolean;
  logger: Logger;
  /** Each upstream's state and open connections, app servers first. */
  upstreams(): UpstreamSnapshot[];
  /**
   * Graceful shutdown: stops accepting, closes WebSockets with 1001 (going away), lets
   * in-flight HTTP requests finish for up to `graceMs` (10 s), then cuts what is left.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

function listen(server: http.Server, port: number, host: string, setting: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new ListenError(`cannot listen on ${host}:${port} (${err.code ?? err.message}); free the port or set ${setting}`, err));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

const closeServer = (server: http.Server): Promise<void> =>
  new Promise((resolve) => {
    if (!server.listening) resolve();
    else server.close(() => resolve());
  });

/** The host part of a URL a browser can open: a wildcard listen address is reached as localhost. */
const publicHost = (host: string): string => (host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host);

/**
 * The origins whose pages may open a WebSocket: the configured public origins, or else the
 * proxy's own https URL as a browser on this machine would name it.
 */
export function allowedOrigins(config: Config, httpsPort: number): Set<string> {
  if (config.proxy.publicOrigins) return new Set(config.proxy.publicOrigins);
  const port = httpsPort === 443 ? '' : `:${httpsPort}`;
  return new Set(['localhost', '127.0.0.1', publicHost(config.proxy.host)].map((host) => `https://${host}${port}`));
}

/** The proxy's public URL, e.g. `https://127.0.0.1:8443`. */
export const publicUrl = (config: Config, httpsPort = config.proxy.httpsPort): string => `https://${publicHost(config.proxy.host)}:${httpsPort}`;

export async function createProxy(config: Config, options: ProxyOptions = {}): Promise<Proxy> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { component: 'proxy' } }, logDestination());
  const urls = { ...configuredUpstreams(config), ...options.upstreams };
  if (urls.app.length === 0 || urls.webStomp.length === 0) throw new ProxyError('no_upstreams', 'the proxy needs at least one app server and one Web-STOMP node');
  const tls = await loadTlsMaterial(config);
  if (tls.generated) logger.info({ certFile: tls.certFile }, 'made a self-signed development certificate for localhost and 127.0.0.1');

  const apps = new UpstreamPool('app', urls.app);
  const brokers = new UpstreamPool('web-stomp', urls.webStomp);
  let closing = false;
  const isClosing = (): boolean => closing;
  const ports: ProxyPorts = { https: 0, http: 0, admin: 0 };
  let origins: Set<string> | undefined;

  // Scrapes start after both exist; the byte counter reads the connections lazily.
  const metrics = createProxyMetrics(() => connections.collectBytes());
  const connections = new ClientConnections(connectionLimit(config.proxy.maxConnectionsPerIp), metrics);
  const proxy = HttpProxy.createProxyServer({ xfwd: false });
  // Every proxy.web/ws call passes its own error callback; this keeps an unexpected emit
  // from crashing the process.
  proxy.on('error', (err) => logger.error({ err: err.message }, 'http-proxy error'));
  const handleHttp = createHttpHandler({ proxy, pool: apps, connections, metrics, logger, isClosing });
  const tunnels = new WebSocketTunnels({
    proxy,
    pool: brokers,
    connections,
    metrics,
    logger,
    idleTimeoutMs: config.proxy.idleTimeoutMs,
    connectTimeoutMs: config.proxy.connectTimeoutMs,
    gate: { maxFrameBytes: config.proxy.maxFrameBytes, maxSubscriptions: config.proxy.maxSubscriptions },
    // The default origins name the port actually bound (tests listen on port 0).
    isAllowedOrigin: (origin) => (origins ??= allowedOrigins(config, ports.https)).has(origin),
    isClosing,
  });

  for (const pool of [apps, brokers]) {
    for (const u of pool.list) metrics.upstreamUp.set({ kind: u.kind, upstream: u.name }, 1);
    pool.on('change', (u, state, reason) => {
      metrics.upstreamUp.set({ kind: u.kind, upstream: u.name }, state === 'up' ? 1 : 0);
      if (state === 'up') logger.info({ upstream: u.name, kind: u.kind, reason }, 'upstream is up');
      else logger.warn({ upstream: u.name, kind: u.kind, reason }, 'upstream is down');
      // Its clients must not wait for a TCP timeout to learn that: they reconnect elsewhere.
      if (state === 'down' && u.kind === 'web-stomp') tunnels.closeUpstream(u, 'broker node down');
    });
  }
  const health = new HealthChecker(
    [
      { pool: apps, probe: httpProbe },
      { pool: brokers, probe: tcpProbe },
    ],
    config.proxy.healthIntervalMs,
  );

  // maxHeaderSize makes Node itself answer 431 to a request whose headers are larger.
  const server = https.createServer(
    { cert: tls.cert, key: tls.key, maxHeaderSize: config.proxy.maxHeaderBytes, handshakeTimeout: HANDSHAKE_TIMEOUT_MS },
    handleHttp,
  );
  // The raw TCP socket, before TLS: counted from the first byte, handshake included.
  server.on('connection', (socket: net.Socket) => connections.add(socket));
  server.on('upgrade', tunnels.handleUpgrade);
  // Saying nothing after the handshake is given as long as a WebSocket gets to log in.
  dropSilentConnections(server, config.proxy.connectTimeoutMs);
  server.on('tlsClientError', (err, socket) => {
    metrics.refused.inc({ reason: 'tls_handshake' });
    logger.debug({ ip: socket.remoteAddress, err: err.message }, 'TLS handshake failed');
    socket.destroy();
  });
  const redirect = createRedirectServer(() => [...(origins ??= allowedOrigins(config, ports.https))]);
  // The redirect port draws on the same descriptors: its connections count toward their
  // address's share (one over it is simply closed: a redirect is not worth telling why), and
  // one that says nothing is dropped like on the HTTPS port.
  redirect.on('connection', (socket: net.Socket) => {
    connections.add(socket);
    if (connections.isOverLimit(socket)) socket.destroy();
  });
  redirect.setTimeout(config.proxy.connectTimeoutMs);
  const admin = createAdminServer(metrics.registry, () => [...apps.snapshot(), ...brokers.snapshot()]);

  const servers = [server, redirect, admin];
  try {
    ports.https = await listen(server, options.ports?.https ?? config.proxy.httpsPort, config.proxy.host, 'ROOMCAST_PROXY_HTTPS_PORT');
    ports.http = await listen(redirect, options.ports?.http ?? config.proxy.httpPort, config.proxy.host, 'ROOMCAST_PROXY_HTTP_PORT');
    ports.admin = await listen(admin, options.ports?.admin ?? config.proxy.adminPort, ADMIN_HOST, 'ROOMCAST_PROXY_ADMIN_PORT');
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    handleHttp.close();
    throw err;
  }
  health.start();

  const httpsUrl = publicUrl(config, ports.https);
  logger.info({ url: httpsUrl, http: ports.http, admin: ports.admin, certFile: tls.certFile, upstreams: urls }, 'proxy listening');

  let closed: Promise<void> | null = null;
  const shutdown = async (graceMs: number): Promise<void> => {
    closing = true;
    logger.info({ websockets: tunnels.size, graceMs }, 'proxy shutting down');
    const checksStopped = health.stop();
    const drained = closeServer(server);
    redirect.close();
    redirect.closeAllConnections();
    tunnels.closeAll('proxy shutting down');
    server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      logger.warn({ open: connections.size }, 'in-flight requests outlived the grace period; cutting them');
      connections.destroyAll();
      await drained;
    }
    handleHttp.close();
    await checksStopped;
    await closeServer(admin);
    logger.info('proxy stopped');
  };

  return {
    httpsUrl,
    httpUrl: `http://${publicHost(config.proxy.host)}:${ports.http}`,
    adminUrl: `http://${ADMIN_HOST}:${ports.admin}`,
    ports,
    certFile: tls.certFile,
    certGenerated: tls.generated,
    logger,
    upstreams: () => [...apps.snapshot(), ...brokers.snapshot()],
    close: ({ graceMs = DEFAULT_CLOSE_GRACE_MS } = {}) => (closed ??= shutdown(graceMs)),
  };
}
