/**
 * One open event stream: replay, then live, with no gap and no duplicate at the seam.
 *
 * The stream follows its rooms *before* its first read, and every read is "after my position"
 * (the source holds it). So an event that commits during the replay is either in a replay page
 * (committed before that page's statement) or beyond the position the replay ends at, and its
 * notification, which arrives at commit, finds the stream already following. Reads never
 * overlap: a notification during a read only marks that another read is due, and it runs when
 * the current one is done (any number of notifications meanwhile make one read). A
 * notification therefore never starts a read from a stale position, and is never lost.
 *
 * Besides events the stream writes `: ping` every heartbeat, so no hop on the way sees a silent
 * response, and ends itself after its lifetime with an `end` event (the client resumes).
 */
import type { StreamEndData, StreamEndReason, StreamResetData, StreamResumeData } from '../../../shared/protocol/events';
import type { SseSink } from './sse-response';
import type { StreamSource } from './stream-sources';

export type StreamState = 'replaying' | 'live' | 'ended';

/** Why a stream stopped: one of the server's reasons, or the client went away. */
export type StreamStop = StreamEndReason | 'client_closed';

export interface EventStreamOptions {
  source: StreamSource;
  out: SseSink;
  heartbeatMs: number;
  lifetimeMs: number;
  /** Events per read; the replay reads page after page of this size. */
  pageSize?: number;
  /** After a failed read (Postgres unavailable), the next try waits this long. */
  retryReadMs?: number;
  onError?: (err: unknown) => void;
  /** Called once, when the stream stops for any reason. */
  onStop?: (why: StreamStop) => void;
}

const RESUMES: Record<StreamEndReason, boolean> = {
  lifetime: true,
  shutdown: true,
  session_ended: false,
  membership_ended: false,
};

export class EventStream {
  private current: StreamState = 'replaying';
  private reading = false;
  private again = false;
  private unfollow: (() => void) | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly pageSize: number;
  private readonly retryReadMs: number;

  constructor(private readonly o: EventStreamOptions) {
    this.pageSize = o.pageSize ?? 200;
    this.retryReadMs = o.retryReadMs ?? 1000;
    o.out.onClose(() => this.stop('client_closed'));
  }

  get state(): StreamState {
    return this.current;
  }

  /**
   * Writes the opening (`reset` first when the id given was beyond the room, then `resume`),
   * follows, and starts the replay.
   */
  start(opening: { requested: string | null; reset: (StreamResetData & { id: string }) | null }): void {
    const { source, out } = this.o;
    if (out.closed) {
      this.stop('client_closed');
      return;
    }
    // Before the first read: whatever commits from here on wakes this stream.
    this.unfollow = source.follow(() => this.wake());
    if (opening.reset) {
      const { id, ...data } = opening.reset;
      out.send('reset', data satisfies StreamResetData, id);
    }
    out.send('resume', { stream: source.kind, after: source.id, requested: opening.requested } satisfies StreamResumeData);
    this.timers.push(
      setInterval(() => this.o.out.comment('ping'), this.o.heartbeatMs),
      setTimeout(() => this.end('lifetime'), this.o.lifetimeMs),
    );
    this.wake();
  }

  /** There may be something new: read now, or right after the read in progress. */
  wake(): void {
    if (this.current === 'ended') return;
    if (this.reading) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  /** Tells the client why with an `end` event, then ends the response. */
  end(reason: StreamEndReason): void {
    if (this.current === 'ended') return;
    this.o.out.send('end', { reason, resume: RESUMES[reason] } satisfies StreamEndData);
    this.stop(reason);
    this.o.out.end();
  }

  private stop(why: StreamStop): void {
    if (this.current === 'ended') return;
    this.current = 'ended';
    this.unfollow?.();
    for (const t of this.timers) clearTimeout(t);
    clearTimeout(this.retryTimer);
    this.o.onStop?.(why);
  }

  /** A method, not a field read: the state changes under the reads' awaits. */
  private isEnded(): boolean {
    return this.current === 'ended';
  }

  private async pump(): Promise<void> {
    this.reading = true;
    try {
      do {
        this.again = false;
        for (;;) {
          const { items, hasMore } = await this.o.source.next(this.pageSize);
          if (this.isEnded()) return;
          for (const { id, event } of items) {
            const fast = this.o.out.send(event.type, event, id);
            const ends = this.o.source.endsWith(event);
            if (ends) {
              this.end(ends);
              return;
            }
            if (!fast) await this.o.out.drained();
            if (this.isEnded()) return;
          }
          if (!hasMore) break;
        }
        this.current = 'live';
      } while (this.again);
    } catch (err) {
      this.o.onError?.(err);
      // The position did not move: the next read covers the same ground.
      if (!this.isEnded()) this.retryTimer = setTimeout(() => this.wake(), this.retryReadMs);
    } finally {
      this.reading = false;
    }
  }
}
