/** What an operator watches on the proxy's admin port; one registry per proxy instance. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Why the proxy answered a request or connection itself instead of forwarding it. */
export type RefusalReason =
  | 'too_many_connections'
  | 'blocked_path'
  | 'bad_request'
  | 'no_upstream'
  | 'upstream_error'
  | 'proxy_resources'
  | 'shutting_down'
  | 'tls_handshake'
  | 'forbidden_origin';

export interface ProxyMetrics {
  registry: Registry;
  upstreamUp: Gauge<'kind' | 'upstream'>;
  websocketsOpen: Gauge<'upstream'>;
  bytes: Counter<'direction'>;
  requests: Counter<'class'>;
  refused: Counter<'reason'>;
  stompRefused: Counter<'reason'>;
  upstreamErrors: Counter<'upstream' | 'code'>;
}

/** `collectBytes` runs before each scrape, so traffic of still-open connections is counted too. */
export function createProxyMetrics(collectBytes: () => void): ProxyMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    upstreamUp: new Gauge({
      name: 'roomcast_proxy_upstream_up',
      help: 'Whether the upstream takes new connections (1) or is marked down (0).',
      labelNames: ['kind', 'upstream'],
      registers: [registry],
    }),
    websocketsOpen: new Gauge({
      name: 'roomcast_proxy_websockets_open',
      help: 'WebSockets open (or in their handshake) per Web-STOMP node.',
      labelNames: ['upstream'],
      registers: [registry],
    }),
    bytes: new Counter({
      name: 'roomcast_proxy_client_bytes_total',
      help: 'Bytes on the public listeners (TLS included): in = from clients, out = to clients.',
      labelNames: ['direction'],
      registers: [registry],
      collect: collectBytes,
    }),
    requests: new Counter({
      name: 'roomcast_proxy_http_requests_total',
      help: 'HTTP requests on the public port by status class (2xx ... 5xx; none: the client left before an answer).',
      labelNames: ['class'],
      registers: [registry],
    }),
    refused: new Counter({
      name: 'roomcast_proxy_refused_total',
      help: 'Requests and connections the proxy answered itself instead of forwarding, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    stompRefused: new Counter({
      name: 'roomcast_proxy_stomp_refused_total',
      help: 'STOMP connections the gate ended, by reason (connect_timeout, login_failed, destination, header, ...).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: 'roomcast_proxy_upstream_errors_total',
      help: 'Failed connections or exchanges with an upstream, by error code.',
      labelNames: ['upstream', 'code'],
      registers: [registry],
    }),
  };
}
