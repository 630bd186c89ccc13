/**
 * One Server-Sent Events response (WHATWG HTML, "Server-sent events"): the headers that keep
 * every hop from caching, buffering or compressing it, the frames, and back-pressure (`send`
 * returns false while the client is slow; the stream then waits for `drained` before reading
 * more, so a stalled client costs a socket buffer, not a growing heap).
 */
import type { ServerResponse } from 'node:http';

/** What a stream writes to; a fake in unit tests. */
export interface SseSink {
  /** True once the client has gone or the response has ended. */
  readonly closed: boolean;
  /** Writes one event; false when the client is not keeping up (wait for `drained`). */
  send(type: string, data: unknown, id?: string): boolean;
  /** A comment line (`: text`): keeps every hop from seeing a silent connection; clients ignore it. */
  comment(text: string): void;
  /** Resolves when the client has taken what was written, or has gone. */
  drained(): Promise<void>;
  end(): void;
  /** Calls `fn` once, when the client goes away or the response ends. */
  onClose(fn: () => void): void;
}

/** Refuses what would break the framing: an id or type with a line break or NUL. */
const FIELD_RE = /^[^\r\n\0]*$/;

export class SseResponse implements SseSink {
  private ended = false;

  constructor(private readonly res: ServerResponse) {
    res.once('close', () => {
      this.ended = true;
    });
  }

  /**
   * Sends the status and headers at once, then `retry:` (the delay a plain EventSource waits
   * before reconnecting by itself) as the stream's first line.
   */
  open(retryMs: number): void {
    // A stream ends after minutes (its lifetime, a logout, a shutdown): its connection closes
    // with it rather than idling until the keep-alive timeout, which would hold up a shutdown.
    this.res.shouldKeepAlive = false;
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      // nginx and similar proxies buffer responses unless told not to.
      'X-Accel-Buffering': 'no',
    });
    // Small frames go out at once rather than waiting to fill a segment.
    this.res.socket?.setNoDelay(true);
    this.res.write(`retry: ${retryMs}\n\n`);
  }

  get closed(): boolean {
    return this.ended || this.res.destroyed || this.res.writableEnded;
  }

  send(type: string, data: unknown, id?: string): boolean {
    if (this.closed) return true;
    if (!FIELD_RE.test(type) || (id !== undefined && !FIELD_RE.test(id))) throw new Error('an SSE id or event type cannot hold a line break');
    // JSON.stringify escapes CR and LF inside strings, so the data is one line.
    return this.res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  comment(text: string): void {
    if (!this.closed) this.res.write(`: ${text}\n\n`);
  }

  drained(): Promise<void> {
    if (this.closed || !this.res.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.once('drain', done);
      this.res.once('close', done);
    });
  }

  end(): void {
    if (!this.closed) this.res.end();
  }

  onClose(fn: () => void): void {
    this.res.once('close', fn);
  }
}
