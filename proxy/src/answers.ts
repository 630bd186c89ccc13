/**
 * What the proxy says itself: JSON errors in the API's shape on HTTP, a raw response on a
 * socket that asked to upgrade, a WebSocket close frame on a tunnel it ends.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorBody, ErrorCode } from '../../shared/protocol/errors';
import { API_SECURITY_HEADERS } from '../../runtime/security-headers';

const errorJson = (code: ErrorCode, message: string): string => JSON.stringify({ error: { code, message } } satisfies ErrorBody);

/**
 * On every response of the HTTPS port (not the plain-HTTP redirect, where it would mean
 * nothing): a browser that saw it uses https for this host, on every port, for a year.
 */
export const STRICT_TRANSPORT_SECURITY = 'max-age=31536000';
/**
 * The proxy's own answers are JSON errors: the same headers as the app server's API answers
 * (never sniffed, framed or allowed to load anything), and never cached.
 */
const OWN_ANSWER_HEADERS = { ...API_SECURITY_HEADERS, 'Cache-Control': 'no-store' };

export function sendError(res: ServerResponse, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
  const body = errorJson(code, message);
  res.writeHead(status, { ...headers, ...OWN_ANSWER_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Answers an upgrade request before any WebSocket exists (the socket is raw bytes by then),
 * then closes the connection. Upgrades arrive on the HTTPS port only, hence HSTS.
 */
export function refuseUpgrade(socket: Duplex, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
  const body = errorJson(code, message);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    ...Object.entries({
      ...headers,
      ...OWN_ANSWER_HEADERS,
      'strict-transport-security': STRICT_TRANSPORT_SECURITY,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      connection: 'close',
    }).map(
      ([k, v]) => `${k}: ${v}`,
    ),
  ];
  if (socket.writable) socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  else socket.destroy();
}

/** RFC 6455 §5.5.1: an unmasked (server-to-client) close frame; the reason fits one frame. */
export function closeFrame(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const frame = Buffer.alloc(4 + text.length);
  frame[0] = 0x88; // FIN + opcode 8 (close)
  frame[1] = 2 + text.length;
  frame.writeUInt16BE(code, 2);
  text.copy(frame, 4);
  return frame;
}

/** WebSocket close code 1001: the endpoint is going away (shutdown, or its broker node died). */
export const GOING_AWAY = 1001;
/** WebSocket close code 1008: the client broke a rule (the STOMP gate's refusals). */
export const POLICY_VIOLATION = 1008;
