/**
 * Security headers on every response the app server writes: pages, API answers, errors and
 * 404s alike. The proxy adds Strict-Transport-Security (it alone knows the request came over TLS).
 *
 * The pages keep their policy in a `<meta>` tag too (web/static/*.html), but a meta policy
 * cannot forbid framing: `frame-ancestors` (with X-Frame-Options for older browsers) only works
 * as a header, and without it the instructor console could be framed and clickjacked.
 */
import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { API_SECURITY_HEADERS } from '../../../runtime/security-headers';

/** The pages' policy: the meta tag's, plus what only a header can say. */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; " +
  "worker-src blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Sets the headers for a non-page response; `pageHeaders` upgrades the policy for pages. */
export function securityHeaders() {
  return (req: Request, res: Response, next: NextFunction): void => {
    res.set(API_SECURITY_HEADERS);
    // API answers carry session tokens and room messages: no cache on the way may keep them.
    if (req.path.startsWith('/api/')) res.set('Cache-Control', 'no-store');
    next();
  };
}

/** For express.static's `setHeaders`: HTML pages need their scripts, styles and the WebSocket. */
export function pageHeaders(res: ServerResponse, filePath: string): void {
  if (filePath.endsWith('.html')) res.setHeader('Content-Security-Policy', PAGE_CSP);
}
