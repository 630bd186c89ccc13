/**
 * One delivery attempt: a signed POST of one event to one endpoint, and what came of it.
 *
 * - Only a 2xx is success; redirects are not followed (a 3xx is a failure, and following one
 *   would let a public URL send us to a private one).
 * - 410 Gone means "stop": the caller disables the endpoint.
 * - A `Retry-After` on 429 or 503 is returned, bounded, for the caller to wait at least that long.
 * - The whole attempt (connect, TLS, headers) has `timeoutMs`; a receiver that sends its answer's
 *   headers and then stalls on the body is cut off at the same deadline, the status already known.
 * - The target is checked (target-guard.ts) on every attempt, and the connection goes to the
 *   very addresses that were checked: nothing resolves the name again in between.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { signatureHeader } from './signature';
import { parseTargetUrl, resolveTarget, systemResolver, WebhookTargetError, type Resolver, type ResolvedAddress, type TargetPolicy } from './target-guard';

export interface AttemptResult {
  /** delivered: 2xx; failed: anything else that may be retried; gone: 410; aborted: we stopped it (shutdown), nothing is known. */
  kind: 'delivered' | 'failed' | 'gone' | 'aborted';
  status: number | null;
  responseMs: number;
  error: string | null;
  /** From a 429 or 503's Retry-After, bounded by MAX_RETRY_AFTER_MS. */
  retryAfterMs: number | null;
}

export interface Delivery {
  url: string;
  /** The live secrets, newest first. */
  secrets: readonly string[];
  /** The event id: the same for every attempt and replay of the event. */
  id: string;
  body: string;
}

/** A receiver may ask us to wait, but not for longer than this per attempt. */
export const MAX_RETRY_AFTER_MS = 3600_000;
const USER_AGENT = 'roomcast-webhooks/1';

/** Seconds (`120`) or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS);
}

/** Connects to the addresses that were checked, never to a fresh resolution of the name. */
function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const first = addresses[0] as ResolvedAddress;
    if ((options as { all?: boolean }).all) callback(null, addresses.map((a) => ({ address: a.address, family: a.family })));
    else callback(null, first.address, first.family);
  };
}

export class WebhookSender {
  // Kept-alive connections: a busy endpoint gets one TLS handshake, not one per event.
  private readonly agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' }),
  };

  constructor(
    private readonly o: { timeoutMs: number; policy: TargetPolicy; resolve?: Resolver },
  ) {}

  async send(d: Delivery, signal: AbortSignal): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = (): number => Math.round(performance.now() - started);
    const failed = (error: string, status: number | null = null): AttemptResult => ({ kind: 'failed', status, responseMs: elapsed(), error, retryAfterMs: null });
    let url: URL;
    let addresses: ResolvedAddress[];
    try {
      url = parseTargetUrl(d.url, this.o.policy);
      addresses = await resolveTarget(url, this.o.policy, this.o.resolve ?? systemResolver);
    } catch (err) {
      if (err instanceof WebhookTargetError) return failed(`refused: ${err.message}`);
      throw err;
    }
    const timestamp = Math.floor(Date.now() / 1000);
    const body = Buffer.from(d.body, 'utf8');
    const headers = {
      'content-type': 'application/json',
      'content-length': String(body.length),
      'user-agent': USER_AGENT,
      'webhook-id': d.id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader(d.secrets, d.id, timestamp, d.body),
    };
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const done = (r: AttemptResult): void => {
        if (settled) return;
        settled = true;
        resolve(r);
      };
      const req = transport.request(url, {
        method: 'POST',
        headers,
        agent: this.agents[url.protocol as 'http:' | 'https:'],
        lookup: pinnedLookup(addresses),
        signal,
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        const responseMs = elapsed();
        // Read and drop the body, so the connection can carry the next event; the timer still bounds it.
        res.resume();
        res.on('end', () => clearTimeout(timer));
        res.on('error', () => clearTimeout(timer));
        if (status >= 200 && status < 300) done({ kind: 'delivered', status, responseMs, error: null, retryAfterMs: null });
        else if (status === 410) done({ kind: 'gone', status, responseMs, error: 'HTTP 410 Gone: the receiver asked for no more deliveries', retryAfterMs: null });
        else {
          const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(res.headers['retry-after']) : null;
          done({ kind: 'failed', status, responseMs, error: `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`, retryAfterMs });
        }
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        if (signal.aborted) done({ kind: 'aborted', status: null, responseMs: elapsed(), error: 'stopped', retryAfterMs: null });
        else done(failed((err as NodeJS.ErrnoException).code ? `${(err as NodeJS.ErrnoException).code}: ${err.message}` : err.message));
      });
      req.end(body);
    });
  }

  close(): void {
    this.agents['http:'].destroy();
    this.agents['https:'].destroy();
  }
}
