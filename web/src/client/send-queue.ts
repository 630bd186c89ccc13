/**
 * Messages the person sent, until the server has stored them. Each gets a client message id
 * once, and every retry reuses it: the server stores a message once per id, so a POST whose
 * answer was lost can be sent again safely.
 *
 * Sending goes in passes: one POST at a time, every unsent message once, oldest first, so
 * messages keep the order they were typed in, and after an outage they go again in that order.
 * A message that fails never holds up the others, which are tried in the same pass:
 * - refused (a 4xx other than 401, 408, 429): `failed` with the server's reason, never retried
 *   (the same request would be refused again); the person discards it or edits it, and an
 *   edited text is a new message with a new id, since the server may have tied the old id to
 *   the refused content (`idempotency_conflict`);
 * - anything else (no answer, 5xx, 408, 429, 401): stays `sending` and is tried again, with the
 *   same id, in the next pass. Passes after a failed one wait out a backoff, cut short when a
 *   new message is queued (it must not wait behind an older one's backoff) or when the client's
 *   waker fires (network or connection back). A `Retry-After` holds every send for that long
 *   (the server is saying it cannot take more), up to MAX_RETRY_AFTER_MS.
 *
 * With `persist`, every unsent message (being sent or failed) is also kept in the browser's
 * storage and restored by `start`, so a reload loses nothing (see unsent-store.ts).
 */
import type { RoomMessage, SendMessageRequest } from '../../../shared/protocol/messages';
import { backoffDelay, Waker, type BackoffOptions } from './backoff';
import { ApiError, RoomClientError, isRefusal } from './errors';
import { UnsentStore, type PersistUnsent, type UnsentRecord } from './unsent-store';

/**
 * - `sending`: not stored yet; (re)tried until it is (`error` holds the last transient failure);
 * - `sent`: stored (`message` is the stored copy, its seq the room's order);
 * - `failed`: refused by the server (`error` says why); waits for `discard` or `edit`;
 * - `discarded`: a failed message the person discarded or took back to edit.
 */
export type OutgoingStatus = 'sending' | 'sent' | 'failed' | 'discarded';

export interface OutgoingMessage {
  readonly clientMsgId: string;
  readonly request: SendMessageRequest;
  status: OutgoingStatus;
  /** The stored message once `sent` (its seq is the room's order). */
  message: RoomMessage | null;
  /** Why it `failed`, or the last retriable error while still `sending`. */
  error: RoomClientError | null;
}

export type OutgoingRequest = Omit<SendMessageRequest, 'clientMsgId'>;

/**
 * The longest `Retry-After` obeyed. A server asking for more (or a proxy in between gone wrong)
 * would otherwise strand a class's messages; asking again after a minute costs one request.
 */
export const MAX_RETRY_AFTER_MS = 60_000;

/** A v4 UUID from getRandomValues, which (unlike crypto.randomUUID) also exists on plain-http pages. */
export function newClientMsgId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface SendQueueDeps {
  post(request: SendMessageRequest): Promise<RoomMessage>;
  onChange(outgoing: OutgoingMessage): void;
  /** Problems that do not stop sending (storage unavailable). */
  onError?(err: RoomClientError): void;
  backoff: BackoffOptions;
  /** The client's waker: when it wakes (network back, connection live) every backoff is cut short. */
  waker: Waker;
  /** Keep unsent messages in the browser's storage for this user and room; absent or null: memory only. */
  persist?: (PersistUnsent & { roomId: string }) | null;
}

interface Entry {
  readonly outgoing: OutgoingMessage;
  readonly queuedAt: number;
}

// A function, not an inline comparison: the status can change while a POST is awaited.
const isSending = (o: OutgoingMessage): boolean => o.status === 'sending';

const asClientError = (err: unknown): RoomClientError =>
  err instanceof RoomClientError ? err : new RoomClientError('internal', String((err as Error)?.message ?? err), { cause: err });

export class SendQueue {
  /** Unsent messages (sending and failed) in the order they were queued. */
  private readonly entries: Entry[] = [];
  private readonly store: UnsentStore | null;
  /** Cuts the queue's own pause short when there is something new to send (the client's waker is the network's, shared). */
  private readonly kicks = new Waker();
  /** A `Retry-After` holds every send until then. */
  private heldUntil = 0;
  private lastQueuedAt = 0;
  private running = false;
  private started = false;
  private stopped = false;

  constructor(private readonly deps: SendQueueDeps) {
    this.store = deps.persist ? new UnsentStore(deps.persist, deps.persist.roomId, (err) => deps.onError?.(err)) : null;
  }

  /** Messages not yet stored (being sent, or failed and waiting for discard or edit), oldest first. */
  get pending(): readonly OutgoingMessage[] {
    return this.entries.map((e) => e.outgoing);
  }

  /** Restores the unsent messages a previous page left in storage (sent again with their own ids) and starts sending. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    // A message sent before start() is already stored and queued: restore only the others.
    const restored = (this.store?.load() ?? []).filter((r) => !this.entries.some((e) => e.outgoing.clientMsgId === r.clientMsgId)).map((r) => this.entryOf(r));
    // They were queued before anything sent on this page: they go first.
    this.entries.unshift(...restored);
    this.lastQueuedAt = Math.max(this.lastQueuedAt, ...restored.map((e) => e.queuedAt));
    for (const e of restored) this.deps.onChange(e.outgoing);
    this.kick();
  }

  enqueue(request: OutgoingRequest): OutgoingMessage {
    return this.add({ ...request, clientMsgId: newClientMsgId() });
  }

  /** A copy of one of our messages arrived from the broker or a resync before the POST's answer. */
  settle(message: RoomMessage): void {
    const entry = this.entries.find((e) => e.outgoing.clientMsgId === message.clientMsgId);
    // A failed one stays failed: a copy with its id can only be other content (an idempotency conflict).
    if (entry && isSending(entry.outgoing)) this.markSent(entry, message);
  }

  /** Drops a failed message. False when there is no failed message with this id. */
  discard(clientMsgId: string): boolean {
    return this.takeFailed(clientMsgId) !== null;
  }

  /**
   * Takes a failed message back to be edited: it is dropped, and its request (without the id)
   * returned; sending it again with `enqueue` gives it a new client message id. Null when there
   * is no failed message with this id.
   */
  edit(clientMsgId: string): OutgoingRequest | null {
    const entry = this.takeFailed(clientMsgId);
    if (!entry) return null;
    const request: Partial<SendMessageRequest> = { ...entry.outgoing.request };
    delete request.clientMsgId;
    return request as OutgoingRequest;
  }

  stop(): void {
    this.stopped = true;
    this.kicks.wake();
  }

  private add(request: SendMessageRequest): OutgoingMessage {
    const outgoing: OutgoingMessage = { clientMsgId: request.clientMsgId, request, status: 'sending', message: null, error: null };
    // Strictly increasing, so the restored order is the typed order even for two messages in one millisecond.
    this.lastQueuedAt = Math.max(Date.now(), this.lastQueuedAt + 1);
    const entry: Entry = { outgoing, queuedAt: this.lastQueuedAt };
    this.entries.push(entry);
    this.save(entry);
    this.deps.onChange(outgoing);
    this.kick();
    return outgoing;
  }

  private entryOf(r: UnsentRecord): Entry {
    const error = r.error ? new RoomClientError(r.error.code, r.error.message) : null;
    return { outgoing: { clientMsgId: r.clientMsgId, request: r.request, status: r.status, message: null, error }, queuedAt: r.queuedAt };
  }

  private save(entry: Entry): void {
    const o = entry.outgoing;
    if (o.status !== 'sending' && o.status !== 'failed') return;
    const error = o.status === 'failed' && o.error ? { code: o.error.code, message: o.error.message } : null;
    this.store?.save({ clientMsgId: o.clientMsgId, request: o.request, status: o.status, error, queuedAt: entry.queuedAt });
  }

  /** Something may be sendable now: start the loop, or end its pause. */
  private kick(): void {
    this.kicks.wake();
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      // Passes in a row with a transient failure: the backoff's exponent.
      let failedPasses = 0;
      while (!this.stopped && this.entries.some((e) => isSending(e.outgoing))) {
        const held = this.heldUntil - Date.now();
        if (held > 0) await this.pause(held);
        else if (await this.pass()) failedPasses = 0;
        else await this.pause(backoffDelay(failedPasses++, this.deps.backoff));
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Tries every message being sent once, oldest first (those queued meanwhile included).
   * True when none failed transiently; stops early when the server asked to wait.
   */
  private async pass(): Promise<boolean> {
    const tried = new Set<Entry>();
    let clean = true;
    for (;;) {
      const next = this.entries.find((e) => isSending(e.outgoing) && !tried.has(e));
      if (!next || this.stopped) return clean;
      if (Date.now() < this.heldUntil) return false;
      tried.add(next);
      if (!(await this.attempt(next))) clean = false;
    }
  }

  /** One POST. False when it failed transiently (to be tried again). */
  private async attempt(entry: Entry): Promise<boolean> {
    const o = entry.outgoing;
    let message: RoomMessage;
    try {
      message = await this.deps.post(o.request);
    } catch (err) {
      // Its copy arrived meanwhile: stored after all, nothing to retry.
      if (!isSending(o)) return true;
      o.error = asClientError(err);
      const refused = isRefusal(err);
      if (refused) {
        o.status = 'failed';
        this.save(entry);
      } else {
        const retryAfterMs = err instanceof ApiError ? err.retryAfterMs : null;
        if (retryAfterMs !== null) this.heldUntil = Math.max(this.heldUntil, Date.now() + Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
      }
      this.deps.onChange(o);
      return refused;
    }
    this.markSent(entry, message);
    return true;
  }

  /** Waits `ms`, or less: until a new message is queued or the client's waker fires (network or connection back). */
  private async pause(ms: number): Promise<void> {
    await Promise.race([this.deps.waker.sleep(ms), this.kicks.sleep(ms)]);
    this.kicks.wake();
  }

  private markSent(entry: Entry, message: RoomMessage): void {
    const o = entry.outgoing;
    if (o.status === 'sent') return;
    o.status = 'sent';
    o.message = message;
    o.error = null;
    this.drop(entry);
    this.deps.onChange(o);
  }

  private takeFailed(clientMsgId: string): Entry | null {
    const entry = this.entries.find((e) => e.outgoing.clientMsgId === clientMsgId);
    if (!entry || entry.outgoing.status !== 'failed') return null;
    entry.outgoing.status = 'discarded';
    this.drop(entry);
    this.deps.onChange(entry.outgoing);
    return entry;
  }

  private drop(entry: Entry): void {
    const at = this.entries.indexOf(entry);
    if (at >= 0) this.entries.splice(at, 1);
    this.store?.remove(entry.outgoing.clientMsgId);
  }
}
