/**
 * The few pages the API itself answers (links opened from mails: unsubscribe, address check,
 * password reset): plain HTML, no script or style, so the API's strict Content-Security-Policy
 * still applies, and every value escaped.
 */
export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** A whole page: `title` is escaped here; `body` is HTML the caller built with escapeHtml. */
export const htmlPage = (title: string, body: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
