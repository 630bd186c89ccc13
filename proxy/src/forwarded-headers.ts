import type { IncomingMessage } from 'node:http';

/**
 * Tells the app server who really asked. The proxy is the edge, so whatever a client sent in
 * these headers is replaced, never appended to: a forged `X-Forwarded-For` must not become the
 * address the app server rate-limits or logs.
 */
export function setForwardedHeaders(req: IncomingMessage, clientIp: string, reqId: string): void {
  req.headers['x-forwarded-for'] = clientIp;
  req.headers['x-forwarded-proto'] = 'https';
  if (req.headers.host) req.headers['x-forwarded-host'] = req.headers.host;
  else delete req.headers['x-forwarded-host'];
  delete req.headers.forwarded;
  req.headers['x-request-id'] = reqId;
}
