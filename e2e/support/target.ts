/**
 * Where the browsers reach roomcast: through the TLS proxy, started in-process in front of the
 * test's app server and the Web-STOMP nodes, exactly as a user reaches it (HTTPS pages and API,
 * WSS on same-origin `/ws`). `direct` skips the proxy, for debugging a failure in isolation.
 */
import { createLogger } from '../../server/src/logger';
import { createProxy } from '../../proxy/src/index';
import type { Harness } from '../../testkit/harness';

export interface Target {
  /** Origin the pages are loaded from (and the API is called on). */
  baseURL: string;
  /** Web-STOMP URLs for the page, or null to keep the page's own same-origin `/ws`. */
  stompUrls: string[] | null;
  /** True behind the proxy's self-signed development certificate. */
  ignoreHTTPSErrors: boolean;
  /** Open WebSockets per Web-STOMP node port, as the proxy counts them (null without a proxy). */
  openSocketsByNodePort(): Record<number, number> | null;
  close(): Promise<void>;
}

/** Pages from the app server itself; the broker straight at every node, node 1 first. */
export async function direct(harness: Harness): Promise<Target> {
  return {
    baseURL: harness.server.url,
    stompUrls: harness.config.rabbitmq.nodes.map((n) => n.webStompUrl),
    ignoreHTTPSErrors: false,
    openSocketsByNodePort: () => null,
    close: async () => undefined,
  };
}

/** The product's path: the proxy on free ports, its development certificate, the page's own `/ws`. */
export async function viaProxy(harness: Harness): Promise<Target> {
  const proxy = await createProxy(harness.config, {
    upstreams: { app: [harness.server.url] },
    ports: { https: 0, http: 0, admin: 0 },
    logger: createLogger({ logLevel: 'silent' }, 'proxy'),
  });
  return {
    baseURL: proxy.httpsUrl,
    stompUrls: null,
    ignoreHTTPSErrors: true,
    openSocketsByNodePort: () =>
      Object.fromEntries(proxy.upstreams().filter((u) => u.kind === 'web-stomp').map((u) => [Number(new URL(u.url).port), u.open])),
    close: () => proxy.close({ graceMs: 1000 }),
  };
}

export const reachRoomcast: (harness: Harness) => Promise<Target> = viaProxy;
