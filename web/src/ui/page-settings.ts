/**
 * Where a page finds the broker. Deployed, the page's own `<meta name="roomcast:stomp-urls">`
 * says it (default `/ws`: same origin, through the TLS proxy). Something that loads the page
 * on purpose (the e2e tests, a load test) can set `window.roomcastSettings` before the page
 * script runs, to point it at Web-STOMP nodes directly or wrap its WebSockets.
 */
import type { WebSocketFactory } from '../client/index';

export interface PageSettings {
  /** Absolute ws:// or wss:// URLs. */
  stompUrls: string[];
  webSocketFactory?: WebSocketFactory;
}

declare global {
  interface Window {
    roomcastSettings?: { stompUrls?: string[]; webSocketFactory?: WebSocketFactory };
  }
}

/** `/ws` on an https page is `wss://<host>/ws`. */
function absoluteWebSocketUrl(url: string): string {
  const u = new URL(url, window.location.href);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  return u.toString();
}

export function readPageSettings(): PageSettings {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="roomcast:stomp-urls"]')?.content ?? '/ws';
  const override = window.roomcastSettings;
  const urls = override?.stompUrls ?? meta.split(/\s+/).filter(Boolean);
  return {
    stompUrls: urls.map(absoluteWebSocketUrl),
    ...(override?.webSocketFactory ? { webSocketFactory: override.webSocketFactory } : {}),
  };
}
