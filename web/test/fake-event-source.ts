/**
 * A scripted EventSource: the test plays the server's side of each stream the client opens
 * (events with their ids, the server's `end`, a dropped connection) and sees what the client
 * did with it (the URL it opened, whether it closed it). Like the `eventsource` package and
 * browsers, a closed source dispatches nothing more.
 */
import type { EventSourceConstructor, EventSourceLike } from '../src/client/index';

type Listener = (event: { data?: unknown; lastEventId?: string }) => void;

export class FakeEventSource implements EventSourceLike {
  closed = false;
  private readonly listeners = new Map<string, Listener[]>();
  private lastId = '';

  constructor(readonly url: string) {}

  /** The query of the URL the client opened. */
  get query(): Record<string, string> {
    return Object.fromEntries(new URL(this.url).searchParams);
  }

  get path(): string {
    return new URL(this.url).pathname;
  }

  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.closed = true;
  }

  /** The server sends an event; `id` moves the source's last event id, as an `id:` line does. */
  send(type: string, data: unknown, id?: string): this {
    if (id !== undefined) this.lastId = id;
    this.dispatch(type, { data: JSON.stringify(data), lastEventId: this.lastId });
    return this;
  }

  /** The server's first event on a stream it accepted. */
  accept(after = ''): this {
    return this.send('resume', { stream: 'room', after, requested: null });
  }

  /** The connection failed or dropped (the browser then tries to reconnect by itself). */
  fail(): this {
    this.dispatch('error', {});
    return this;
  }

  private dispatch(type: string, event: { data?: unknown; lastEventId?: string }): void {
    if (this.closed) return;
    for (const l of this.listeners.get(type) ?? []) l(event);
  }
}

/** Every source the client opened, newest last, and the constructor to give the client. */
export class FakeEventSources {
  readonly opened: FakeEventSource[] = [];
  readonly EventSource: EventSourceConstructor;

  constructor() {
    const opened = this.opened;
    this.EventSource = class extends FakeEventSource {
      constructor(url: string) {
        super(url);
        opened.push(this);
      }
    };
  }

  get latest(): FakeEventSource {
    const s = this.opened.at(-1);
    if (!s) throw new Error('the client has opened no EventSource');
    return s;
  }
}
