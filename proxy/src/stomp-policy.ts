/**
 * What a browser may say to the broker, frame by frame. RabbitMQ (through broker-auth) still
 * decides who may read which room; this narrows the STOMP surface in front of it to what the
 * roomcast client uses, so no browser can shape a queue (make it durable, keep it after the
 * connection, name it other than a page does), publish, or multiply its subscriptions. Pure:
 * one instance per connection, fed the heads the STOMP reader produces.
 */
import { CONSUMERS_PER_SUBSCRIPTION_QUEUE, PAGE_QUEUE_NAME, parseDestination } from '../../shared/protocol/routing';
import { GateRefusal } from './gate-refusal';
import type { StompHead } from './stomp-frames';

/**
 * The only headers a SUBSCRIBE may carry: everything else (durable, auto-delete, exclusive,
 * x-* …) shapes a queue. `x-queue-name` is checked on its own: the page's one queue name.
 */
const SUBSCRIBE_HEADERS = new Set(['id', 'destination', 'ack', 'prefetch-count', 'receipt', 'x-queue-name']);
const ACK_MODES = new Set(['auto', 'client', 'client-individual']);
/** SUBSCRIBE frames a connection may send over its life, per subscription it may hold at once. */
const SUBSCRIBES_PER_SLOT = 4;

export interface SessionLimits {
  maxSubscriptions: number;
}

type Handler = (head: StompHead, headers: Map<string, string>) => void;

/** Headers by name; a repeated header is refused, since STOMP servers disagree on which one wins. */
function headerMap(head: StompHead): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of head.headers) {
    if (map.has(name)) throw new GateRefusal('header', `${head.command} repeats the header "${name}"`);
    map.set(name, value);
  }
  return map;
}

export class StompSessionPolicy {
  /** The CONNECT's `login` header (the user id), once the CONNECT has passed. */
  login: string | null = null;
  /** Live subscriptions: id → destination. */
  private readonly subscriptions = new Map<string, string>();
  /** SUBSCRIBE frames passed on this connection, unsubscribed ones included. */
  private subscribes = 0;
  /** The one queue name this connection's topic subscriptions share, and how many SUBSCRIBEs named it. */
  private queueName: string | null = null;
  private queueNamed = 0;
  private readonly handlers: Record<string, Handler>;

  constructor(private readonly limits: SessionLimits) {
    const refuse = (command: string): never => {
      throw new GateRefusal('command', `${command} is not allowed: browsers never publish`);
    };
    const pass: Handler = () => undefined;
    this.handlers = {
      CONNECT: (_, h) => this.connect(h),
      STOMP: (_, h) => this.connect(h),
      SUBSCRIBE: (_, h) => this.subscribe(h),
      UNSUBSCRIBE: (_, h) => {
        this.subscriptions.delete(h.get('id') ?? '');
      },
      ACK: pass,
      NACK: pass,
      DISCONNECT: pass,
      SEND: () => refuse('SEND'),
      BEGIN: () => refuse('BEGIN'),
      COMMIT: () => refuse('COMMIT'),
      ABORT: () => refuse('ABORT'),
    };
  }

  /** Throws a GateRefusal when the frame must not reach the broker. */
  check(head: StompHead): void {
    const headers = headerMap(head);
    if (this.login === null && head.command !== 'CONNECT' && head.command !== 'STOMP') {
      throw new GateRefusal('connect_first', `the first frame must be CONNECT, not ${head.command}`);
    }
    const handler = Object.hasOwn(this.handlers, head.command) ? this.handlers[head.command] : undefined;
    if (!handler) throw new GateRefusal('command', `unknown STOMP command ${head.command}`);
    handler(head, headers);
  }

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  private connect(h: Map<string, string>): void {
    if (this.login !== null) throw new GateRefusal('connect_repeated', 'already connected');
    const login = h.get('login');
    // A CONNECT without credentials could fall back to a broker default user: never let one through.
    if (!login || !h.get('passcode')) throw new GateRefusal('header', 'CONNECT needs the login and passcode of a broker token');
    this.login = login;
  }

  private subscribe(h: Map<string, string>): void {
    for (const name of h.keys()) {
      if (!SUBSCRIBE_HEADERS.has(name)) throw new GateRefusal('header', `SUBSCRIBE may not carry the header "${name}"`);
    }
    const id = h.get('id');
    const destination = h.get('destination');
    if (!id || !destination) throw new GateRefusal('header', 'SUBSCRIBE needs an id and a destination');
    const ack = h.get('ack');
    if (ack !== undefined && !ACK_MODES.has(ack)) throw new GateRefusal('header', `unknown ack mode "${ack}"`);
    const prefetch = h.get('prefetch-count');
    if (prefetch !== undefined && !/^\d{1,5}$/.test(prefetch)) throw new GateRefusal('header', 'prefetch-count must be a number below 100000');
    if (!this.allowedDestination(destination)) {
      throw new GateRefusal('destination', `not a destination of yours: ${destination.slice(0, 200)} (only your rooms' all and user keys, or your own instructor queue)`);
    }
    const queueName = h.get('x-queue-name');
    if (queueName !== undefined) this.checkQueueName(queueName, destination);
    if (this.subscriptions.has(id)) throw new GateRefusal('duplicate_subscription', `subscription id ${id.slice(0, 100)} is already in use`);
    for (const d of this.subscriptions.values()) {
      if (d === destination) throw new GateRefusal('duplicate_subscription', `already subscribed to ${destination}`);
    }
    if (this.subscriptions.size >= this.limits.maxSubscriptions) {
      throw new GateRefusal('too_many_subscriptions', `at most ${this.limits.maxSubscriptions} subscriptions per connection`);
    }
    // Each SUBSCRIBE costs the broker a queue and broker-auth a claim kept 10 minutes in Redis;
    // a connection that unsubscribes and subscribes in a loop would multiply both. The client
    // subscribes once per destination and connection, so a few times the cap is plenty.
    const lifetime = this.limits.maxSubscriptions * SUBSCRIBES_PER_SLOT;
    if (this.subscribes >= lifetime) {
      throw new GateRefusal('too_many_subscriptions', `at most ${lifetime} SUBSCRIBE frames per connection; reconnect to start over`);
    }
    this.subscribes++;
    this.subscriptions.set(id, destination);
    if (queueName !== undefined) {
      this.queueName = queueName;
      this.queueNamed++;
    }
  }

  /**
   * A page names one queue for its topic subscriptions (shared/protocol/routing.ts). The
   * broker still decides who owns a name and how often it may be consumed; here the surface
   * narrows to that use: the page's format, topics only, one name per connection, as many
   * SUBSCRIBEs naming it as the queue may have consumers.
   */
  private checkQueueName(name: string, destination: string): void {
    if (!PAGE_QUEUE_NAME.test(name)) throw new GateRefusal('header', 'x-queue-name must be stomp-subscription- and 22 base64url characters');
    if (parseDestination(destination)?.kind !== 'room-key') throw new GateRefusal('header', 'x-queue-name is for room key subscriptions only');
    if (this.queueName !== null && this.queueName !== name) throw new GateRefusal('header', 'one x-queue-name per connection');
    if (this.queueNamed >= CONSUMERS_PER_SUBSCRIPTION_QUEUE) {
      throw new GateRefusal('too_many_subscriptions', `at most ${CONSUMERS_PER_SUBSCRIPTION_QUEUE} SUBSCRIBE frames may name the queue`);
    }
  }

  /** A room's `all` key, the caller's own user key in a room, or the caller's own instructor queue. */
  private allowedDestination(destination: string): boolean {
    const parsed = parseDestination(destination);
    if (!parsed) return false;
    if (parsed.kind === 'instructor-queue') return parsed.userId === this.login;
    const { key } = parsed;
    return key.kind === 'all' || (key.kind === 'user' && key.userId === this.login);
  }
}
