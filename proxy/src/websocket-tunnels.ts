/**
 * WebSocket upgrades on `/ws`: each becomes a tunnel to the Web-STOMP node with the fewest open
 * connections. The broker-to-client direction (nearly all the traffic) is piped as it comes;
 * the proxy only follows its frame boundaries, so that a frame of its own never splits one of
 * the broker's, and reads the command of its first STOMP frame (CONNECTED, or ERROR for a
 * refused login). The client-to-broker direction goes through the STOMP gate (stomp-gate.ts):
 * CONNECT first and within a deadline, no publishing, only the caller's own destinations.
 *
 * The proxy steps in to end a tunnel, and says so properly: an upgrade it refuses gets an HTTP
 * answer, a gate refusal an ERROR frame then a close frame (1008), a tunnel it closes for other
 * reasons (its node died, shutdown, idle) a close frame with 1001. A tunnel whose node ends or
 * breaks the connection is closed at once, so the client reconnects, through the proxy, to a
 * live node.
 */
import type { IncomingMessage } from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type HttpProxy from 'http-proxy';
import type { Logger } from 'pino';
import type { ErrorCode } from '../../shared/protocol/errors';
import { GOING_AWAY, POLICY_VIOLATION, closeFrame, refuseUpgrade } from './answers';
import { clientAddress, type ClientConnections } from './client-connections';
import { setForwardedHeaders } from './forwarded-headers';
import { GateRefusal } from './gate-refusal';
import type { ProxyMetrics, RefusalReason } from './metrics';
import { requestId } from './request-id';
import { WEBSOCKET_PATH, normalizePath } from './request-policy';
import { errorFrame } from './stomp-frames';
import { ClientStreamGate, type GateLimits } from './stomp-gate';
import { isLocalResourceError, type Upstream, type UpstreamPool } from './upstreams';
import { OPCODE, ServerFrameBoundaries, serverFrame } from './websocket-frames';

/** How long a closing socket may take to flush before it is cut. */
const CLOSE_GRACE_MS = 1000;
/** A broker that has not answered a client's CONNECT by then is given up on. */
const BROKER_ANSWER_TIMEOUT_MS = 30_000;
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
  /** A tunnel whose CONNECT the broker has not answered by then is refused. */
  connectTimeoutMs: number;
  gate: GateLimits;
  /** Whether a browser page from `origin` may open a WebSocket. */
  isAllowedOrigin: (origin: string) => boolean;
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
  readonly gate: ClientStreamGate;
  readonly broker: ServerFrameBoundaries;
  /** Runs until the broker's first frame (the answer to CONNECT) arrives. */
  connectTimer: NodeJS.Timeout | undefined;
  /** The client's CONNECT has gone to the broker; the timer now waits for its answer. */
  connectSeen: boolean;
  /** The proxy's last frames, written once the broker's frame in progress has been relayed. */
  tail: Buffer | null;
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
  private readonly byUpstream = new WeakMap<Duplex, Tunnel>();

  constructor(private readonly deps: TunnelDeps) {
    deps.proxy.on('proxyReqWs', (proxyReq, req) => {
      const tunnel = this.handshaking.get(req);
      if (!tunnel) return;
      // Ends in http-proxy's error callback (a 502); the upgraded socket gets no timeout.
      proxyReq.setTimeout(UPGRADE_TIMEOUT_MS, () => proxyReq.destroy(Object.assign(new Error('upgrade timed out'), { code: 'ETIMEDOUT' })));
      // Registered before http-proxy's own listener, so this runs before it pipes the sockets.
      proxyReq.once('upgrade', (_res, upstreamSocket: net.Socket) => this.opened(tunnel, upstreamSocket));
    });
    // Emitted right after http-proxy has written the 101 and piped both ways, before any data flows.
    deps.proxy.on('open', (upstreamSocket) => {
      const tunnel = this.byUpstream.get(upstreamSocket);
      if (tunnel && !tunnel.closing) this.startGate(tunnel, upstreamSocket);
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
    // Browsers always send Origin with a WebSocket handshake: a page of another site must not
    // open one in a user's browser. A request without Origin is no browser (tests, benchmarks,
    // tools); it carries no ambient credentials to abuse and must log in with a passcode in its
    // CONNECT frame like anyone else, so it is let through.
    const origin = req.headers.origin;
    if (origin !== undefined && !this.deps.isAllowedOrigin(origin)) {
      refuse('forbidden_origin', 403, 'origin_not_allowed', `WebSockets may not be opened from ${origin.slice(0, 200)}`);
      return;
    }
    const upstream = pool.pickLeastOpen();
    if (!upstream) {
      refuse('no_upstream', 503, 'service_unavailable', 'no broker node is available; retry shortly');
      return;
    }
    setForwardedHeaders(req, ip, reqId);
    // No extension is ever negotiated (permessage-deflate is off on the nodes anyway): the gate
    // reads the client's frames as they are, and refuses compressed ones.
    delete req.headers['sec-websocket-extensions'];
    const tunnel: Tunnel = {
      reqId,
      ip,
      upstream,
      client,
      started,
      upstreamSocket: null,
      closing: false,
      gate: new ClientStreamGate(this.deps.gate),
      broker: new ServerFrameBoundaries(),
      connectTimer: undefined,
      connectSeen: false,
      tail: null,
    };
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
    this.byUpstream.set(upstreamSocket, t);
    // http-proxy turned the client socket's timeout off; the idle limit starts now.
    t.client.setTimeout(this.deps.idleTimeoutMs, () => this.close(t, 'idle timeout'));
    // The node ended or broke the connection: end the client's at once, so it reconnects.
    upstreamSocket.once('close', () => {
      if (t.tail) {
        // Waiting for the end of a frame that will never come: no frame of ours can follow.
        t.tail = null;
        endSoon(t.client);
      }
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

  /** The client's direction, through the gate: allowed bytes go on unchanged, a refusal ends the tunnel. */
  private startGate(t: Tunnel, upstreamSocket: Duplex): void {
    t.client.unpipe(upstreamSocket);
    t.client.on('data', (chunk: Buffer) => this.fromClient(t, upstreamSocket, chunk));
    t.client.resume();
    upstreamSocket.on('data', (chunk: Buffer) => this.fromBroker(t, chunk));
    const ms = this.deps.connectTimeoutMs;
    t.connectTimer = setTimeout(() => this.refuse(t, new GateRefusal('connect_timeout', `no STOMP CONNECT within ${ms} ms`)), ms);
  }

  /**
   * The client has sent its CONNECT: from now on only the broker can be slow, which is no
   * reason to cut the client. During a reconnect storm (a node or the proxy restarted, every
   * client logging in again) broker-auth answers in seconds, and cutting at the client's
   * deadline would only make every client start over and prolong the storm. A broker that
   * never answers still frees the descriptors after `BROKER_ANSWER_TIMEOUT_MS`.
   */
  private connectSent(t: Tunnel): void {
    clearTimeout(t.connectTimer);
    t.connectTimer = setTimeout(
      () => this.refuse(t, new GateRefusal('connect_timeout', `the broker did not answer the CONNECT within ${BROKER_ANSWER_TIMEOUT_MS} ms`)),
      BROKER_ANSWER_TIMEOUT_MS,
    );
    t.connectSeen = true;
  }

  private fromClient(t: Tunnel, upstreamSocket: Duplex, chunk: Buffer): void {
    if (t.closing) return;
    let allowed: Buffer[];
    try {
      allowed = t.gate.push(chunk);
    } catch (err) {
      if (!(err instanceof GateRefusal)) this.deps.logger.error({ reqId: t.reqId, err }, 'the STOMP gate failed on a frame; refusing it');
      this.refuse(t, err instanceof GateRefusal ? err : new GateRefusal('malformed', 'unreadable frame'));
      return;
    }
    if (allowed.length === 0) return;
    if (!t.connectSeen && t.connectTimer !== undefined && t.gate.login !== null) this.connectSent(t);
    if (!upstreamSocket.write(allowed.length === 1 ? allowed[0] : Buffer.concat(allowed))) {
      t.client.pause();
      upstreamSocket.once('drain', () => t.client.resume());
    }
  }

  /** Runs after the pipe has relayed `chunk`, or instead of it once the proxy is ending the tunnel. */
  private fromBroker(t: Tunnel, chunk: Buffer): void {
    if (t.tail) {
      const upToBoundary = t.broker.advance(chunk, true);
      if (upToBoundary > 0) t.client.write(chunk.subarray(0, upToBoundary));
      if (t.broker.atBoundary) this.writeTail(t);
      return;
    }
    t.broker.advance(chunk);
    if (t.connectTimer === undefined || t.broker.firstCommand === null) return;
    clearTimeout(t.connectTimer);
    t.connectTimer = undefined;
    // A refused login: RabbitMQ would leave the socket open for about a minute after its ERROR.
    if (t.broker.firstCommand === 'ERROR') this.refuse(t, new GateRefusal('login_failed', 'the broker refused the CONNECT'), false);
  }

  /** Ends a tunnel the gate refused: an ERROR frame naming the reason (unless the broker sent one), then a close frame. */
  private refuse(t: Tunnel, refusal: GateRefusal, sendError = true): void {
    if (t.closing) return;
    this.deps.metrics.stompRefused.inc({ reason: refusal.reason });
    this.deps.logger.warn(
      { reqId: t.reqId, ip: t.ip, user: t.gate.login, upstream: t.upstream.name, reason: refusal.reason, detail: refusal.message },
      'stomp connection refused',
    );
    const close = closeFrame(POLICY_VIOLATION, refusal.reason);
    const error = serverFrame(OPCODE.text, errorFrame(`${refusal.reason}: ${refusal.message}`, `The roomcast proxy closed this connection (${refusal.reason}): ${refusal.message}`));
    this.end(t, sendError ? Buffer.concat([error, close]) : close);
  }

  /** Ends a tunnel from the proxy's side with 1001 (idle, node down, shutdown). */
  private close(t: Tunnel, reason: string): void {
    if (t.closing) return;
    this.deps.logger.info({ reqId: t.reqId, ip: t.ip, upstream: t.upstream.name, reason }, 'websocket closed by the proxy');
    this.end(t, closeFrame(GOING_AWAY, reason));
  }

  /**
   * Stops both directions and writes `tail` (the proxy's last frames) to the client as soon as
   * the broker's frame in progress, if any, has been relayed whole; the node's socket is cut.
   */
  private end(t: Tunnel, tail: Buffer): void {
    t.closing = true;
    clearTimeout(t.connectTimer);
    const upstreamSocket = t.upstreamSocket;
    if (upstreamSocket === null) {
      t.client.destroy(); // still handshaking: there is no WebSocket to close yet
      return;
    }
    upstreamSocket.unpipe(t.client);
    t.tail = tail;
    if (t.broker.atBoundary) {
      this.writeTail(t);
      return;
    }
    // fromBroker relays the rest of the frame, then writes the tail.
    upstreamSocket.resume();
    setTimeout(() => {
      if (t.tail === null) return;
      t.tail = null;
      upstreamSocket.destroy();
      t.client.destroy();
    }, CLOSE_GRACE_MS).unref();
  }

  private writeTail(t: Tunnel): void {
    const tail = t.tail;
    t.tail = null;
    t.upstreamSocket?.destroy();
    if (tail) endSoon(t.client, tail);
  }

  private closed(t: Tunnel): void {
    clearTimeout(t.connectTimer);
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
