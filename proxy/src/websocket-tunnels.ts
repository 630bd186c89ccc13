/**
 * WebSocket upgrades on `/ws`: each becomes a tunnel to the Web-STOMP node with the fewest open
 * connections. The proxy does not parse frames; it only steps in to end a tunnel, and then
 * says so properly: an upgrade it refuses gets an HTTP answer, a tunnel it closes (its node
 * died, the proxy is shutting down, the connection went idle) gets a close frame with 1001.
 * A tunnel whose node ends or breaks the connection is closed at once, so the client notices
 * and reconnects, through the proxy, to a live node.
 */
import type { IncomingMessage } from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type HttpProxy from 'http-proxy';
import type { Logger } from 'pino';
import type { ErrorCode } from '../../shared/protocol/errors';
import { GOING_AWAY, closeFrame, refuseUpgrade } from './answers';
import { clientAddress, type ClientConnections } from './client-connections';
import { setForwardedHeaders } from './forwarded-headers';
import type { ProxyMetrics, RefusalReason } from './metrics';
import { requestId } from './request-id';
import { WEBSOCKET_PATH, normalizePath } from './request-policy';
import { isLocalResourceError, type Upstream, type UpstreamPool } from './upstreams';

/** How long a closing socket may take to flush before it is cut. */
const CLOSE_GRACE_MS = 1000;
/** A node that accepted the connection but has not answered the upgrade by then is given up on. */
const UPGRADE_TIMEOUT_MS = 10_000;

export interface TunnelDeps {
  proxy: HttpProxy;
  pool: UpstreamPool;
  connections: ClientConnections;
  metrics: ProxyMetrics;
  logger: Logger;
  /** Above the STOMP heart-beat interval, so only a dead peer's tunnel ever reaches it. */
  idleTimeoutMs: number;
  isClosing: () => boolean;
}

interface Tunnel {
  readonly reqId: string;
  readonly ip: string;
  readonly upstream: Upstream;
  readonly client: net.Socket;
  readonly started: bigint;
  upstreamSocket: Duplex | null;
  /** The proxy has begun ending it; later close events change nothing. */
  closing: boolean;
}

/** Ends the socket's writing side, and cuts it if it has not closed after the grace period. */
function endSoon(socket: Duplex, data?: Buffer): void {
  if (socket.destroyed) return;
  if (socket.writable) socket.end(data);
  // Unpiped, nobody reads it: drain (and drop) what the peer still sends, such as its own close
  // frame, so its end of the stream is seen and the socket closes without waiting for the timer.
  socket.resume();
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}

const since = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e6;

export class WebSocketTunnels {
  private readonly tunnels = new Set<Tunnel>();
  private readonly handshaking = new WeakMap<IncomingMessage, Tunnel>();

  constructor(private readonly deps: TunnelDeps) {
    deps.proxy.on('proxyReqWs', (proxyReq, req) => {
      const tunnel = this.handshaking.get(req);
      if (!tunnel) return;
      // Ends in http-proxy's error callback (a 502); the upgraded socket gets no timeout.
      proxyReq.setTimeout(UPGRADE_TIMEOUT_MS, () => proxyReq.destroy(Object.assign(new Error('upgrade timed out'), { code: 'ETIMEDOUT' })));
      // Registered before http-proxy's own listener, so this runs before it pipes the sockets.
      proxyReq.once('upgrade', (_res, upstreamSocket: net.Socket) => this.opened(tunnel, upstreamSocket));
    });
  }

  /** For the TLS server's 'upgrade' event. */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const { pool, connections, metrics, logger, isClosing } = this.deps;
    const started = process.hrtime.bigint();
    // A TLS socket on the public port; typed as a bare Duplex by Node's 'upgrade' event.
    const client = socket as net.Socket;
    const ip = clientAddress(client);
    const reqId = requestId(req.headers['x-request-id']);
    // Node stops handling errors on a socket once it is handed over for an upgrade.
    client.on('error', (err) => logger.debug({ reqId, ip, err: err.message }, 'websocket client socket error'));
    const refuse = (reason: RefusalReason, status: number, code: ErrorCode, message: string): void => {
      metrics.refused.inc({ reason });
      logger.info({ reqId, ip, method: req.method, path: req.url, status, ms: since(started), upstream: null }, 'upgrade refused');
      refuseUpgrade(client, status, code, message, { 'x-request-id': reqId });
    };

    if (connections.isOverLimit(client)) {
      refuse('too_many_connections', 429, 'too_many_connections', 'too many connections from this address; close some and retry');
      return;
    }
    if (isClosing()) {
      refuse('shutting_down', 503, 'service_unavailable', 'the proxy is shutting down; reconnect');
      return;
    }
    if (normalizePath(req.url ?? '') !== WEBSOCKET_PATH) {
      refuse('blocked_path', 404, 'not_found', `WebSockets are served on ${WEBSOCKET_PATH} only`);
      return;
    }
    const upstream = pool.pickLeastOpen();
    if (!upstream) {
      refuse('no_upstream', 503, 'service_unavailable', 'no broker node is available; retry shortly');
      return;
    }
    setForwardedHeaders(req, ip, reqId);
    const tunnel: Tunnel = { reqId, ip, upstream, client, started, upstreamSocket: null, closing: false };
    this.tunnels.add(tunnel);
    this.count(upstream, +1);
    client.once('close', () => this.closed(tunnel));
    this.handshaking.set(req, tunnel);
    this.deps.proxy.ws(req, client, head, { target: upstream.url, ignorePath: true }, (err) => this.failed(tunnel, err));
  };

  /** Closes, with 1001, every tunnel to `upstream` (the health check found its node down). */
  closeUpstream(upstream: Upstream, reason: string): void {
    for (const t of this.tunnels) if (t.upstream === upstream) this.close(t, reason);
  }

  /** Closes every tunnel with 1001 (shutdown). */
  closeAll(reason: string): void {
    for (const t of this.tunnels) this.close(t, reason);
  }

  get size(): number {
    return this.tunnels.size;
  }

  private opened(t: Tunnel, upstreamSocket: net.Socket): void {
    t.upstreamSocket = upstreamSocket;
    if (t.closing) {
      upstreamSocket.destroy();
      return;
    }
    // http-proxy turned the client socket's timeout off; the idle limit starts now.
    t.client.setTimeout(this.deps.idleTimeoutMs, () => this.close(t, 'idle timeout'));
    // The node ended or broke the connection: end the client's at once, so it reconnects.
    upstreamSocket.once('close', () => {
      if (t.closing) return;
      t.closing = true;
      endSoon(t.client);
    });
    this.deps.logger.info(
      { reqId: t.reqId, ip: t.ip, method: 'GET', path: WEBSOCKET_PATH, status: 101, ms: since(t.started), upstream: t.upstream.name },
      'websocket opened',
    );
  }

  /** A failure talking to the node, before or after the upgrade. */
  private failed(t: Tunnel, err: Error): void {
    const e = err as NodeJS.ErrnoException;
    const code = e.code ?? err.message;
    const local = isLocalResourceError(code);
    this.deps.metrics.upstreamErrors.inc({ upstream: t.upstream.name, code });
    if (t.upstreamSocket === null && !t.closing) {
      t.closing = true;
      if (local) {
        this.deps.metrics.refused.inc({ reason: 'proxy_resources' });
        this.deps.logger.error({ reqId: t.reqId, code }, 'the proxy is out of resources (raise its file descriptor limit?); refusing the WebSocket');
        refuseUpgrade(t.client, 503, 'proxy_overloaded', 'the proxy is at capacity; reconnect shortly', { 'x-request-id': t.reqId, 'retry-after': '1' });
      } else {
        this.deps.metrics.refused.inc({ reason: 'upstream_error' });
        refuseUpgrade(t.client, 502, 'bad_gateway', 'the broker node did not answer; reconnect', { 'x-request-id': t.reqId });
      }
    } else {
      t.client.destroy();
    }
    // Marked after answering: marking closes the node's tunnels, this one included.
    if (e.syscall === 'connect' && !local) this.deps.pool.mark(t.upstream, 'down', code);
  }

  /** Ends a tunnel from the proxy's side: a close frame to the client, the node's socket cut. */
  private close(t: Tunnel, reason: string): void {
    if (t.closing) return;
    t.closing = true;
    const upstreamSocket = t.upstreamSocket;
    if (upstreamSocket === null) {
      t.client.destroy(); // still handshaking: there is no WebSocket to close yet
      return;
    }
    // Unpiped first, so nothing from the node can follow (or split) the close frame.
    upstreamSocket.unpipe(t.client);
    t.client.unpipe(upstreamSocket);
    upstreamSocket.destroy();
    endSoon(t.client, closeFrame(GOING_AWAY, reason));
    this.deps.logger.info({ reqId: t.reqId, ip: t.ip, upstream: t.upstream.name, reason }, 'websocket closed by the proxy');
  }

  private closed(t: Tunnel): void {
    this.tunnels.delete(t);
    this.count(t.upstream, -1);
    // Let the client's last bytes (its own close frame) reach the node before the socket goes.
    if (t.upstreamSocket) endSoon(t.upstreamSocket);
    this.deps.logger.info({ reqId: t.reqId, ip: t.ip, upstream: t.upstream.name, ms: since(t.started) }, 'websocket ended');
  }

  private count(upstream: Upstream, delta: number): void {
    upstream.open += delta;
    this.deps.metrics.websocketsOpen.set({ upstream: upstream.name }, upstream.open);
  }
}
