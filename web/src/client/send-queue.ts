/**
 * Messages the person sent, until the server has stored them. Each gets a client message id
 * once, and every retry reuses it: the server stores a message once per id, so a POST whose
 * answer was lost can be sent again safely. Sends go one at a time, so a person's messages
 * keep the order they were typed in.
 */
import type { RoomMessage, SendMessageRequest } from '../../../shared/protocol/messages';
import { backoffDelay, type BackoffOptions, type Waker } from './backoff';
import { isRetriable, type RoomClientError } from './errors';

export type OutgoingStatus = 'sending' | 'sent' | 'failed';

export interface OutgoingMessage {
  readonly clientMsgId: string;
  readonly request: SendMessageRequest;
  status: OutgoingStatus;
  /** The stored message once `sent` (its seq is the room's order). */
  message: RoomMessage | null;
  /** Why it `failed`, or the last retriable error while still `sending`. */
  error: RoomClientError | null;
}

// A function, not an inline comparison: the status can change while a POST is awaited.
const isSent = (o: OutgoingMessage): boolean => o.status === 'sent';

export type OutgoingRequest = Omit<SendMessageRequest, 'clientMsgId'>;

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
  backoff: BackoffOptions;
  waker: Waker;
}

export class SendQueue {
  private readonly queue: OutgoingMessage[] = [];
  private running = false;
  private stopped = false;

  constructor(private readonly deps: SendQueueDeps) {}

  /** Messages not yet stored, in the order they were sent. */
  get pending(): readonly OutgoingMessage[] {
    return this.queue;
  }

  enqueue(request: OutgoingRequest): OutgoingMessage {
    const clientMsgId = newClientMsgId();
    const outgoing: OutgoingMessage = { clientMsgId, request: { ...request, clientMsgId }, status: 'sending', message: null, error: null };
    this.queue.push(outgoing);
    this.deps.onChange(outgoing);
    void this.drain();
    return outgoing;
  }

  /** A copy of one of our messages arrived from the broker or a resync before the POST's answer. */
  settle(message: RoomMessage): void {
    const outgoing = this.queue.find((o) => o.clientMsgId === message.clientMsgId);
    if (outgoing) this.markSent(outgoing, message);
  }

  stop(): void {
    this.stopped = true;
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      let attempt = 0;
      while (!this.stopped) {
        const head = this.queue[0];
        if (!head) break;
        if (isSent(head)) {
          this.queue.shift();
          continue;
        }
        try {
          this.markSent(head, await this.deps.post(head.request));
          attempt = 0;
        } catch (err) {
          // Its copy arrived meanwhile: stored after all, nothing to retry.
          if (isSent(head)) continue;
          head.error = err as RoomClientError;
          if (!isRetriable(err)) {
            head.status = 'failed';
            this.queue.shift();
            this.deps.onChange(head);
            continue;
          }
          this.deps.onChange(head);
          await this.deps.waker.sleep(backoffDelay(attempt++, this.deps.backoff));
        }
      }
    } finally {
      this.running = false;
    }
  }

  private markSent(outgoing: OutgoingMessage, message: RoomMessage): void {
    if (outgoing.status === 'sent') return;
    outgoing.status = 'sent';
    outgoing.message = message;
    outgoing.error = null;
    const at = this.queue.indexOf(outgoing);
    // The head stays until its POST returns (drain removes it); a later one settled early can go now.
    if (at > 0) this.queue.splice(at, 1);
    this.deps.onChange(outgoing);
  }
}
