/**
 * The headers every non-page HTTP answer carries, whoever writes it: the app server's API
 * answers and errors, and the proxy's own errors. One definition, so the two never drift.
 */

/** Anything that is not a page (JSON, metrics, errors): nothing may load, run or frame it. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export const API_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': API_CSP,
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  // No other site's page may hold a reference to ours, nor load our responses into its process.
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};
