/**
 * The proxy's own failures. Upstream trouble never surfaces as an exception: it becomes a
 * 502/503 answer (see http-forwarding.ts) or a closed WebSocket, so these cover start-up.
 */
export type ProxyErrorCode = 'certificate_failed' | 'listen_failed' | 'no_upstreams';

export class ProxyError extends Error {
  override name = 'ProxyError';
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The TLS certificate or key could not be read, or the development pair not generated. */
export class CertificateError extends ProxyError {
  override name = 'CertificateError';
  constructor(message: string, cause?: unknown) {
    super('certificate_failed', message, { cause });
  }
}

/** A listener could not bind its port (taken, or not allowed). */
export class ListenError extends ProxyError {
  override name = 'ListenError';
  constructor(message: string, cause?: unknown) {
    super('listen_failed', message, { cause });
  }
}
