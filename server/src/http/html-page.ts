/**
 * The few pages the API itself answers (links opened from mails: unsubscribe, address check,
 * password reset): plain HTML, no script or style, every value escaped. Their policy is the
 * API's with one change: their forms may post back to us (`form-action 'self'`). The API's own
 * `form-action 'none'` made every browser refuse to submit them.
 */
import type { Response } from 'express';

export const LINK_PAGE_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** A whole page: `title` is escaped here; `body` is HTML the caller built with escapeHtml. */
export const htmlPage = (title: string, body: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;

/** Answers with a page: its policy, then `htmlPage(title, body)`. */
export function sendPage(res: Response, title: string, body: string): void {
  res.set('Content-Security-Policy', LINK_PAGE_CSP).type('html').send(htmlPage(title, body));
}
