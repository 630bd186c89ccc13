/**
 * What the public port may reach. The app server's metrics, broker-auth's endpoints
 * (`/auth/...`, normally on their own loopback port) and anything under `/internal` are for
 * operators and RabbitMQ only, so the proxy answers them itself, whatever their spelling.
 */
import path from 'node:path';

/** The one path upgraded to a Web-STOMP node; every other request goes to an app server. */
export const WEBSOCKET_PATH = '/ws';

const BLOCKED_EXACT = new Set(['/metrics', '/internal', '/auth']);
const BLOCKED_PREFIXES = ['/internal/', '/auth/'];

/**
 * The request path as an upstream router could read it: percent-decoded, lower-cased (Express
 * matches routes case-insensitively), slashes collapsed, dot segments resolved, no trailing
 * slash. Null for a target that is not an origin-form path or does not decode: such a request
 * is refused rather than guessed at, since `GET http://host/metrics` would otherwise slip by.
 */
export function normalizePath(target: string): string | null {
  if (!target.startsWith('/')) return null;
  const raw = target.split('?', 1)[0] ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null;
  }
  const normalized = path.posix.normalize(decoded.toLowerCase().replace(/\/+/g, '/'));
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/** Whether a normalized path is internal and must never be forwarded. */
export const isBlockedPath = (normalized: string): boolean =>
  BLOCKED_EXACT.has(normalized) || BLOCKED_PREFIXES.some((p) => normalized.startsWith(p));
