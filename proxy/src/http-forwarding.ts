/**
 * Plain HTTPS requests: checked (per-address limit, internal paths), given a request id and
 * forwarded headers, sent to an app server round robin, logged once they end.
 *
 * A request body is read in full before it is forwarded (the API's bodies are at most 64 KiB;
 * the proxy takes up to 1 MiB): a request whose app server refused the connection can then be
 * replayed, byte for byte, on another one. Retries happen once, and only when the first server
 * cannot have acted on it (the connection was refused, or a kept-alive connection had been
 * closed under us) or when the method is idempotent.
 */
import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type HttpProxy from 'http-proxy';
import type { Logger } from 'pino';
import type { ErrorCode } from '../../shared/protocol/errors';
import { STRICT_TRANSPORT_SECURITY, sendError } from './answers';
import { clientAddress, type ClientConnections } from './client-connections';
import { setForwardedHeaders } from './forwarded-headers';
import type { ProxyMetrics, RefusalReason } from './metrics';
import { requestId } from './request-id';
import { isBlockedPath, normalizePath } from './request-policy';
import { isLocalResourceError, type Upstream, type UpstreamPool } from './upstreams';

const MAX_BODY_BYTES = 1024 * 1024;
/** An upstream silent this long after the request is cut and the client gets a 502. */
const UPSTREAM_TIMEOUT_MS = 30_000;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export interface HttpForwardingDeps {
  proxy: HttpProxy;
  pool: UpstreamPool;
  connections: ClientConnections;
  metrics: ProxyMetrics;
  logger: Logger;
  isClosing: () => boolean;
}

export type RequestHandler = ((req: IncomingMessage, res: ServerResponse) => void) & { close(): void };

interface UpstreamFailure {
  code: string;
  /** The TCP connect itself failed: the upstream never saw a byte, and is likely down. */
  connectFailed: boolean;
}

const failureOf = (err: Error): UpstreamFailure => {
  const e = err as NodeJS.ErrnoException;
  return { code: e.code ?? err.message, connectFailed: e.syscall === 'connect' };
};

/** The whole body, or null once it exceeds `limit`. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        resolve(null);
      } else chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

export function createHttpHandler(deps: HttpForwardingDeps): RequestHandler {
  const { proxy, pool, connections, metrics, logger, isClosing } = deps;
  // Kept-alive connections per app server; the hint in the server's `Keep-Alive: timeout=5`
  // header makes the agent drop idle sockets before the server would.
  const agents = new Map<Upstream, http.Agent>(pool.list.map((u) => [u, new http.Agent({ keepAlive: true, timeout: UPSTREAM_TIMEOUT_MS })]));
  const lastProxyReq = new WeakMap<IncomingMessage, ClientRequest>();

  proxy.on('proxyReq', (proxyReq, req) => {
    lastProxyReq.set(req, proxyReq);
  });
  proxy.on('proxyRes', (proxyRes, _req, res) => {
    // A reset mid-body must end the client's response too, not leave it hanging.
    proxyRes.once('error', () => res.destroy());
    // Draining for shutdown: the connection closes after this response (http-proxy copies
    // the upstream's Connection header onto it).
    if (isClosing()) proxyRes.headers.connection = 'close';
  });

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const ip = clientAddress(req.socket);
    const reqId = requestId(req.headers['x-request-id']);
    let upstream: Upstream | null = null;
    res.setHeader('x-request-id', reqId);
    res.setHeader('strict-transport-security', STRICT_TRANSPORT_SECURITY);
    if (isClosing()) res.setHeader('connection', 'close');
    res.once('close', () => {
      // The client left before the answer was complete (it closed an event stream, or its
      // connection dropped): end the app server's side too. http-proxy does that only when the
      // request emits 'aborted' or a reset error; a client that closes its connection cleanly
      // (a FIN, as a browser closing an EventSource does) causes neither once the request body
      // has been read in full, and the proxy always reads it first. An event stream would live
      // on upstream until its lifetime ends, holding one of the user's stream slots.
      if (!res.writableFinished) lastProxyReq.get(req)?.destroy();
      // 0: the client went away before any answer.
      const status = res.headersSent ? res.statusCode : 0;
      metrics.requests.inc({ class: status === 0 ? 'none' : `${Math.floor(status / 100)}xx` });
      logger.info(
        {
          reqId,
          ip,
          method: req.method,
          path: (req.url ?? '').split('?', 1)[0],
          status,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
          upstream: upstream?.name ?? null,
        },
        'request',
      );
    });
    const refuse = (reason: RefusalReason, status: number, code: ErrorCode, message: string, headers?: Record<string, string>): void => {
      metrics.refused.inc({ reason });
      sendError(res, status, code, message, headers);
    };

    if (connections.isOverLimit(req.socket)) {
      refuse('too_many_connections', 429, 'too_many_connections', 'too many connections from this address; close some and retry', { connection: 'close' });
      return;
    }
    const path = normalizePath(req.url ?? '');
    if (path === null) {
      refuse('bad_request', 400, 'invalid_request', 'the request target must be a path', { connection: 'close' });
      return;
    }
    if (isBlockedPath(path)) {
      refuse('blocked_path', 404, 'not_found', `no route for ${req.method} ${path}`);
      return;
    }
    setForwardedHeaders(req, ip, reqId);

    const forward = (body: Buffer, attempt: number, exclude?: Upstream): void => {
      const target = pool.pickRoundRobin(exclude);
      if (!target) {
        refuse('no_upstream', 503, 'service_unavailable', 'no app server is available; retry shortly', { 'retry-after': '1' });
        return;
      }
      upstream = target;
      const options: HttpProxy.ServerOptions = {
        target: target.url,
        agent: agents.get(target),
        buffer: Readable.from(body.length > 0 ? [body] : []),
        proxyTimeout: UPSTREAM_TIMEOUT_MS,
      };
      proxy.web(req, res, options, (err) => {
        const failure = failureOf(err);
        metrics.upstreamErrors.inc({ upstream: target.name, code: failure.code });
        if (isLocalResourceError(failure.code)) {
          // The proxy's own limit, not the app server's fault; another app server would fare no better.
          logger.error({ reqId, code: failure.code }, 'the proxy is out of resources (raise its file descriptor limit?); refusing the request');
          if (res.headersSent) res.destroy();
          else refuse('proxy_resources', 503, 'proxy_overloaded', 'the proxy is at capacity; retry shortly', { 'retry-after': '1' });
          return;
        }
        if (failure.connectFailed) pool.mark(target, 'down', failure.code);
        // A kept-alive socket the server closed as we reused it: the server never read the request.
        const staleSocket = lastProxyReq.get(req)?.reusedSocket === true && failure.code === 'ECONNRESET';
        if (attempt === 0 && !res.headersSent && (failure.connectFailed || staleSocket || IDEMPOTENT.has(req.method ?? ''))) {
          logger.debug({ reqId, upstream: target.name, code: failure.code }, 'retrying on another app server');
          forward(body, attempt + 1, staleSocket ? undefined : target);
          return;
        }
        logger.warn({ reqId, upstream: target.name, code: failure.code }, 'app server failed the request');
        if (res.headersSent) res.destroy();
        else refuse('upstream_error', 502, 'bad_gateway', 'the app server did not answer; retry shortly', { 'retry-after': '1' });
      });
    };

    readBody(req, MAX_BODY_BYTES).then(
      (body) => {
        if (body === null) {
          refuse('bad_request', 413, 'payload_too_large', `request body is larger than ${MAX_BODY_BYTES} bytes`, { connection: 'close' });
          return;
        }
        if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
          req.headers['content-length'] = String(body.length);
          delete req.headers['transfer-encoding'];
        }
        // The body is already here: the app server must not wait for a 100 Continue exchange.
        delete req.headers.expect;
        forward(body, 0);
      },
      (err: unknown) => {
        logger.debug({ reqId, err: (err as Error).message }, 'client request failed while reading its body');
        res.destroy();
      },
    );
  };
  return Object.assign(handler, {
    close: () => {
      for (const agent of agents.values()) agent.destroy();
    },
  });
}
