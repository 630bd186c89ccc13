/**
 * A live view of one room: the ordered, de-duplicated messages a member may see, their own
 * sends, the connection state and presence.
 *
 * On every (re)connect it subscribes first, holds what arrives, then resyncs over HTTP from
 * the point up to which it provably holds everything, and merges, so nothing published while it
 * was away is missed and nothing shows twice. Delivery is at-least-once; the message id decides
 * what is a duplicate and the seq decides the order. When the room has been silent for a while
 * it resyncs too, in case a subscription was lost without the socket noticing.
 *
 * The resync point is never "the newest seq shown": a message committed earlier can be published
 * later (the outbox relay), after this client moved on. It is where the client provably holds
 * everything: see `RoomStream` and docs/guarantees.md, "Complete up to".
 */
import type { IMessage } from '@stomp/stompjs';
import type { ResyncPage, RoomMessage, RoomSubscriptions } from '../../../shared/protocol/messages';
import type { RoomPresence } from '../../../shared/protocol/presence';
import { newPageQueueName } from '../../../shared/protocol/routing';
import { backoffDelay, Waker } from './backoff';
import { BrokerLink } from './broker-link';
import { BrokerTokens } from './broker-tokens';
import { settingsOf, type RoomClientOptions, type Settings } from './client-options';
import { Emitter } from './emitter';
import { BrokerError, RoomClientError, isFatal } from './errors';
import { parsePresence, parseRoomMessage } from './incoming';
import { MessageLog, type Placement } from './message-log';
import { PresenceReporter } from './presence';
import { RoomStream } from './room-stream';
import { SendQueue, type OutgoingMessage, type OutgoingRequest } from './send-queue';

export type { RoomClientOptions } from './client-options';

/**
 * - `connecting`: opening the broker connection and subscribing;
 * - `resyncing`: connected, fetching what was missed (live messages are held until it is merged);
 * - `live`: connected and caught up;
 * - `offline`: not connected (waiting to retry, or stopped).
 */
export type ConnectionState = 'connecting' | 'live' | 'resyncing' | 'offline';

export interface RoomClientEvents {
  state: [state: ConnectionState, previous: ConnectionState];
  /** A message new to this client, and where it goes in seq order. */
  message: [message: RoomMessage, placement: Placement];
  /** One of our sends changed status. */
  outgoing: [outgoing: OutgoingMessage];
  presence: [presence: RoomPresence];
  /** Something went wrong; when `fatal` the client has stopped (log in again, or not a member). */
  error: [error: RoomClientError, fatal: boolean];
}

interface Held {
  message: RoomMessage;
  ack(): void;
}

const asClientError = (err: unknown): RoomClientError =>
  err instanceof RoomClientError ? err : new RoomClientError('internal', String((err as Error)?.message ?? err), { cause: err });

export class RoomClient extends Emitter<RoomClientEvents> {
  private readonly s: Settings;
  private readonly log = new MessageLog();
  private readonly waker = new Waker();
  private readonly tokens: BrokerTokens;
  private readonly sends: SendQueue;
  private readonly presence: PresenceReporter;
  /** The time of the newest presence snapshot shown, pushed or read. */
  private presenceAt = 0;
  private current: ConnectionState = 'offline';
  private link: BrokerLink | null = null;
  private urlIndex = 0;
  private started = false;
  private stopped = false;
  /** What the room-wide stream holds; known once the member's role is (the first connect). */
  private stream: RoomStream | null = null;
  /**
   * Up to which seq the rest of what a learner may see (its own messages and those addressed to
   * it) is held: only a resync proves that, since some of it is never pushed.
   */
  private personalThrough = 0;
  private holeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Live messages that arrived during a resync; merged after it so the page sees seq order. */
  private held: Held[] | null = null;
  /** The latest resync; the next one starts after it (see `resync`). */
  private lastResync: Promise<void> = Promise.resolve();
  private silenceTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly onOnline = (): void => this.waker.wake();

  constructor(options: RoomClientOptions) {
    super();
    this.s = settingsOf(options);
    const { api, roomId } = this.s;
    this.tokens = new BrokerTokens(api);
    this.sends = new SendQueue({
      post: async (request) => {
        const { message } = await api.send(roomId, request);
        this.accept(message);
        return message;
      },
      onChange: (o) => this.emit('outgoing', o),
      onError: (err) => this.emit('error', err, false),
      backoff: this.s.reconnect,
      waker: this.waker,
      persist: this.s.persistUnsent ? { ...this.s.persistUnsent, roomId } : null,
    });
    this.presence = new PresenceReporter(
      api,
      roomId,
      this.s.presenceIntervalMs,
      (p) => this.emit('presence', p),
      (err) => this.problem(err),
    );
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Every message held, in seq order. */
  get messages(): readonly RoomMessage[] {
    return this.log.messages;
  }

  /** Our sends not yet stored by the server (being sent, or failed until discarded or edited), oldest first. */
  get pending(): readonly OutgoingMessage[] {
    return this.sends.pending;
  }

  /** Connects and keeps connected until `stop`; progress is reported through events. */
  start(): void {
    if (this.started) return;
    this.started = true;
    globalThis.addEventListener?.('online', this.onOnline);
    this.tokens.startRenewal();
    this.presence.start();
    // Unsent messages a previous page left in storage: shown (an `outgoing` event each) and sent again.
    this.sends.start();
    void this.run();
  }

  /**
   * Queues a message; it is POSTed at once when possible, and retried with the same client
   * message id after network or server errors until the server has stored it. One the server
   * refuses becomes `failed` and waits for `discard` or `edit`; it never holds up later sends.
   */
  send(request: OutgoingRequest): OutgoingMessage {
    return this.sends.enqueue(request);
  }

  /** Drops a `failed` send. False when no failed send has this id. */
  discard(clientMsgId: string): boolean {
    return this.sends.discard(clientMsgId);
  }

  /** Takes a `failed` send back to be edited: its request, to `send` again as a new message (new id); null when no failed send has this id. */
  edit(clientMsgId: string): OutgoingRequest | null {
    return this.sends.edit(clientMsgId);
  }

  /** Disconnects for good. `leave` also removes this member from presence at once (page unload). */
  async stop(options: { leave?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    globalThis.removeEventListener?.('online', this.onOnline);
    clearTimeout(this.silenceTimer);
    clearTimeout(this.holeTimer);
    this.presence.stop();
    this.tokens.stop();
    this.sends.stop();
    this.waker.wake();
    const leaving = options.leave ? this.presence.leave().catch(() => undefined) : undefined;
    await Promise.all([this.link?.close(), leaving]);
    this.setState('offline', true);
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      this.setState('connecting');
      const url = this.s.stompUrls[this.urlIndex % this.s.stompUrls.length] as string;
      // Set when the broker side ended this round: its node may be dead, so the next round tries
      // the next URL. An HTTP failure (the app server) says nothing about the node.
      let brokerFailed: boolean;
      try {
        // The subscription list is asked for on every connect: for an instructor it re-declares the queue.
        const [subscriptions, token] = await Promise.all([this.s.api.subscriptions(this.s.roomId), this.tokens.forConnect()]);
        if (this.stopped) break;
        const link = await BrokerLink.open({
          url,
          token,
          webSocketFactory: this.s.webSocketFactory,
          heartbeatMs: this.s.heartbeatMs,
          connectTimeoutMs: this.s.connectTimeoutMs,
        });
        this.link = link;
        if (this.stopped) {
          await link.close();
          break;
        }
        this.stream ??= RoomStream.of(subscriptions.role);
        await this.subscribe(link, subscriptions);
        await this.catchUp(link);
        attempt = 0;
        const reason = await link.closed;
        brokerFailed = true;
        if (!this.stopped) this.emit('error', reason, false);
      } catch (err) {
        if (this.stopped) break;
        if (isFatal(err)) return this.fail(err);
        brokerFailed = err instanceof BrokerError;
        this.emit('error', asClientError(err), false);
      } finally {
        this.link = null;
        clearTimeout(this.silenceTimer);
      }
      if (this.stopped) break;
      if (brokerFailed) this.urlIndex++;
      this.setState('offline');
      await this.waker.sleep(backoffDelay(attempt++, this.s.reconnect));
    }
  }

  /** Subscribes to everything the member may read and waits until the broker has bound it all. */
  private async subscribe(link: BrokerLink, subs: RoomSubscriptions): Promise<void> {
    // All topics on one queue this page names afresh per connection: the broker declares,
    // authorizes and keeps one queue instead of one per key (docs/decisions/0007-browser-queues.md).
    const queue = { 'x-queue-name': newPageQueueName() };
    const bound = subs.topics.map((destination) => link.subscribe(destination, queue, (frame) => this.onFrame(frame, false)));
    if (subs.instructorQueue) {
      // The durable queue keeps what arrives while the console is closed; each message is acked once it is in the log.
      const headers = { ack: 'client-individual', 'prefetch-count': String(this.s.prefetch) };
      bound.push(link.subscribe(subs.instructorQueue.destination, headers, (frame) => this.onFrame(frame, true)));
    }
    await Promise.all(bound);
  }

  /** Resyncs until it succeeds (or the link drops), then goes live. */
  private async catchUp(link: BrokerLink): Promise<void> {
    this.setState('resyncing');
    for (let attempt = 0; ; attempt++) {
      try {
        await this.resync();
        break;
      } catch (err) {
        if (isFatal(err)) throw err;
        this.emit('error', asClientError(err), false);
        // Live messages keep coming meanwhile (they are merged after each try); retry the resync.
        const closed = await Promise.race([
          link.closed.then(() => true),
          this.waker.sleep(backoffDelay(attempt, this.s.reconnect)).then(() => false),
        ]);
        if (closed || this.stopped) return;
      }
    }
    if (this.link === link && link.open && !this.stopped) {
      this.setState('live');
      this.armSilenceCheck();
    }
  }

  /**
   * One resync at a time, each after the previous one. Never joins one already running: a
   * resync that began before the current subscriptions were bound can miss what was published
   * in between.
   */
  private resync(): Promise<void> {
    const next = this.lastResync.catch(() => undefined).then(() => this.fetchMissed());
    this.lastResync = next;
    return next;
  }

  private async fetchMissed(): Promise<void> {
    this.held = [];
    try {
      const stream = this.stream;
      let cursors = { after: stream?.completeThrough ?? 0, personalAfter: this.personalThrough };
      for (;;) {
        const page: ResyncPage = await this.s.api.messagesAfter(this.s.roomId, cursors, this.s.resyncPageSize);
        for (const m of page.messages) this.accept(m);
        // Each page is complete up to `through`, so progress survives a later page's failure. A
        // server that does not say (an older one, during a rolling upgrade) proves nothing.
        const through = Number.isSafeInteger(page.through) ? page.through : 0;
        this.personalThrough = Math.max(this.personalThrough, through);
        if (!page.hasMore) {
          if (Number.isSafeInteger(page.broadcastThrough)) stream?.completeUpTo(through, page.broadcastThrough as number);
          break;
        }
        cursors = { after: Math.max(cursors.after, page.nextAfter), personalAfter: Math.max(cursors.personalAfter, page.nextAfter) };
      }
    } finally {
      const held = this.held;
      this.held = null;
      held.sort((a, b) => a.message.seq - b.message.seq);
      for (const h of held) {
        this.accept(h.message);
        h.ack();
      }
    }
  }

  private onFrame(frame: IMessage, needsAck: boolean): void {
    const ack = (): void => {
      if (!needsAck) return;
      try {
        frame.ack();
      } catch {
        // The connection is gone; the broker redelivers the message, and the log drops the copy.
      }
    };
    // Presence changes come pushed on the same subscriptions; only the newest snapshot counts (two servers may push out of order).
    const presence = parsePresence(frame.body, this.s.roomId);
    if (presence) {
      if (presence.at >= this.presenceAt) {
        this.presenceAt = presence.at;
        this.emit('presence', presence.members ? { online: presence.online, members: presence.members } : { online: presence.online });
      }
      ack();
      return;
    }
    const message = parseRoomMessage(frame.body, this.s.roomId);
    if (!message) {
      this.emit('error', new RoomClientError('bad_frame', 'dropped a broker message that is not a message of this room'), false);
      ack();
      return;
    }
    if (this.held) this.held.push({ message, ack });
    else {
      this.accept(message);
      ack();
    }
  }

  /** Puts a message in the log (once) and tells the page where it goes. */
  private accept(message: RoomMessage): void {
    // A resync or a send answered after stop(): the page has moved on.
    if (this.stopped) return;
    const placement = this.log.insert(message);
    if (placement) this.emit('message', message, placement);
    this.stream?.add(message);
    this.sends.settle(message);
    if (this.current === 'live') this.armSilenceCheck();
    this.watchHole();
  }

  /**
   * A hole in the room-wide stream is normally a message published late, which arrives within
   * seconds. One still open after the silence delay was lost on the way (a subscription that
   * ended without the socket noticing): resync, without waiting for the room to fall silent.
   */
  private watchHole(): void {
    if (!this.stream?.hasHole) {
      clearTimeout(this.holeTimer);
      this.holeTimer = undefined;
      return;
    }
    this.holeTimer ??= setTimeout(() => {
      this.holeTimer = undefined;
      if (this.stream?.hasHole) void this.onSilence();
    }, this.s.silenceResyncMs);
  }

  private armSilenceCheck(): void {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => void this.onSilence(), this.s.silenceResyncMs);
  }

  /** Nothing arrived for a while, or a hole stayed open: maybe a subscription was lost. Ask. */
  private async onSilence(): Promise<void> {
    if (this.current !== 'live' || this.stopped) return;
    // The connection this resync serves: if it drops meanwhile, the reconnect owns the state and
    // goes live only after its own resync.
    const link = this.link;
    this.setState('resyncing');
    try {
      await this.resync();
    } catch (err) {
      this.problem(err);
    }
    if (link !== null && this.link === link && link.open && !this.stopped) {
      this.setState('live');
      this.armSilenceCheck();
    }
  }

  /** A failure outside the connect loop: fatal ones stop the client, others are reported. */
  private problem(err: unknown): void {
    if (this.stopped) return;
    if (isFatal(err)) void this.fail(err);
    else this.emit('error', asClientError(err), false);
  }

  private async fail(err: unknown): Promise<void> {
    if (this.stopped) return;
    this.emit('error', asClientError(err), true);
    await this.stop();
  }

  private setState(next: ConnectionState, evenIfStopped = false): void {
    if ((this.stopped && !evenIfStopped) || next === this.current) return;
    const previous = this.current;
    this.current = next;
    this.emit('state', next, previous);
    // Connected again: whatever waits to be sent may go now rather than after its backoff, and
    // presence pushed while the connection was down is read once (pushes carry it from here).
    if (next === 'live') {
      this.waker.wake();
      this.presence.refresh();
    }
  }
}
