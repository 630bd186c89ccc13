/**
 * An in-process stand-in for RabbitMQ's Web-STOMP, at the WebSocket level: `factory` is a
 * `webSocketFactory` whose sockets speak enough STOMP 1.2 to the real @stomp/stompjs client
 * (CONNECT/CONNECTED or ERROR, SUBSCRIBE with RECEIPT, MESSAGE, ACK, DISCONNECT, heart-beats).
 * In the manner of stompjs's own test `WrapperWS` and centrifuge-js's `fakeServer`, the test
 * decides everything: refuse a node, refuse a login, stay silent, hold receipts, drop frames,
 * cut a socket. Every socket event comes asynchronously, as with a real WebSocket, but as a
 * microtask: the network takes no time, so the clock (fake timers) moves only the client's own
 * timers, and a test's `advanceTimersByTimeAsync(0)` lets every frame already sent arrive.
 *
 * Routing follows the broker: a message published with a routing key goes to every live
 * subscription of `/exchange/amq.topic/<key>` (a temporary queue that dies with its connection)
 * and into every declared durable queue whose binding matches (`#`, `*`). A durable queue keeps
 * what arrives while nobody consumes it, delivers up to the consumer's `prefetch-count` unacked
 * messages, and puts back what was unacked when the connection ends (redelivered).
 */
import { StompSocketState, type IStompSocket } from '@stomp/stompjs';

export interface StompFrame {
  command: string;
  headers: Record<string, string>;
  body: string;
}

/** What the server does with a CONNECT. */
export type ConnectAnswer = 'connected' | 'silent' | { error: string };

interface Subscription {
  id: string;
  destination: string;
  ack: 'auto' | 'client' | 'client-individual';
  prefetch: number;
  socket: FakeStompSocket;
}

interface QueuedMessage {
  body: string;
  redelivered: boolean;
  /** Position in the queue, so requeued messages go back where they were. */
  order: number;
}

interface DurableQueue {
  binding: string;
  ready: QueuedMessage[];
  /** By ack id: delivered, not acked yet. */
  unacked: Map<string, { message: QueuedMessage; subscription: Subscription }>;
}

/** Runs `fn` after the current code, without a timer (fake timers would push a 0 ms timer set during a tick to the next millisecond). */
const soon = (fn: () => void): void => void Promise.resolve().then(fn);

const EXCHANGE_PREFIX = '/exchange/amq.topic/';
const QUEUE_PREFIX = '/amq/queue/';

/** Topic matching as RabbitMQ does it: `*` one word, `#` zero or more. */
export function topicMatches(pattern: string, key: string): boolean {
  const match = (p: string[], k: string[]): boolean => {
    if (p.length === 0) return k.length === 0;
    const [head, ...rest] = p;
    if (head === '#') return match(rest, k) || (k.length > 0 && match(p, k.slice(1)));
    if (k.length === 0) return false;
    return (head === '*' || head === k[0]) && match(rest, k.slice(1));
  };
  return match(pattern.split('.'), key.split('.'));
}

const escapeHeader = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/:/g, '\\c');
const unescapeHeader = (v: string): string =>
  v.replace(/\\(.)/g, (_, c: string) => (c === 'c' ? ':' : c === 'n' ? '\n' : c === 'r' ? '\r' : c));

/** Serializes a frame as a STOMP 1.2 server writes it (CONNECTED headers are never escaped). */
export function serializeFrame(frame: StompFrame): string {
  const escape = frame.command === 'CONNECTED' ? (v: string) => v : escapeHeader;
  const headers = { ...frame.headers };
  if (frame.body) headers['content-length'] = String(new TextEncoder().encode(frame.body).length);
  const lines = Object.entries(headers).map(([k, v]) => `${escape(k)}:${escape(v)}`);
  return `${frame.command}\n${lines.join('\n')}\n\n${frame.body}\0`;
}

/** Parses what a client sent: frames ending in NUL, heart-beats (bare EOLs) between them. */
function parseFrames(chunk: string): { frames: StompFrame[]; rest: string; heartbeats: number } {
  const frames: StompFrame[] = [];
  let heartbeats = 0;
  let rest = chunk;
  for (;;) {
    while (rest.startsWith('\n') || rest.startsWith('\r\n')) {
      rest = rest.slice(rest.startsWith('\n') ? 1 : 2);
      heartbeats++;
    }
    const end = rest.indexOf('\0');
    if (end < 0) return { frames, rest, heartbeats };
    const raw = rest.slice(0, end);
    rest = rest.slice(end + 1);
    const split = raw.indexOf('\n\n');
    const head = split < 0 ? raw : raw.slice(0, split);
    const body = split < 0 ? '' : raw.slice(split + 2);
    const [command = '', ...lines] = head.split(/\r?\n/);
    const headers: Record<string, string> = {};
    const escaped = command !== 'CONNECT' && command !== 'STOMP';
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = escaped ? unescapeHeader(line.slice(0, colon)) : line.slice(0, colon);
      // STOMP 1.2: the first occurrence of a repeated header wins.
      if (!(name in headers)) headers[name] = escaped ? unescapeHeader(line.slice(colon + 1)) : line.slice(colon + 1);
    }
    frames.push({ command, headers, body });
  }
}

export class FakeStompServer {
  /** Every socket the client opened, oldest first. */
  readonly sockets: FakeStompSocket[] = [];
  /** Every frame any client sent, in order (heart-beats not included). */
  readonly received: { socket: FakeStompSocket; frame: StompFrame }[] = [];
  /** URLs whose node is down: a socket to them never opens (error, then close 1006). */
  readonly down = new Set<string>();
  /** The answer to each CONNECT; default: CONNECTED. */
  connectAnswer: (frame: StompFrame, socket: FakeStompSocket) => ConnectAnswer = () => 'connected';
  /** Whether a SUBSCRIBE's receipt is sent; a held one stays in `heldReceipts` until `releaseReceipts`. */
  answerReceipts = true;
  readonly heldReceipts: { socket: FakeStompSocket; receiptId: string }[] = [];
  /** Frames to the client for which this returns true are never sent (lost on the way). */
  dropOutgoing: (frame: StompFrame, socket: FakeStompSocket) => boolean = () => false;
  /** The server's heart-beat header `sx,sy`; the default asks for none either way. */
  heartBeat: [number, number] = [0, 0];
  private readonly queues = new Map<string, DurableQueue>();
  private deliveries = 0;
  private queued = 0;

  /** The `webSocketFactory` to give the client. */
  readonly factory = (url: string, protocols: string[]): IStompSocket => {
    const socket = new FakeStompSocket(this, url, protocols);
    this.sockets.push(socket);
    return socket;
  };

  /** The newest socket, which the test usually means. */
  get latest(): FakeStompSocket {
    const s = this.sockets.at(-1);
    if (!s) throw new Error('no socket was opened');
    return s;
  }

  /** Sockets that completed the STOMP handshake and are still open. */
  get connected(): FakeStompSocket[] {
    return this.sockets.filter((s) => s.stompConnected && s.readyState === StompSocketState.OPEN);
  }

  /** Frames of one command the clients sent. */
  sent(command: string): StompFrame[] {
    return this.received.filter((r) => r.frame.command === command).map((r) => r.frame);
  }

  /** A durable queue (an instructor's): bound to `binding`, it keeps messages until acked. */
  declareQueue(name: string, binding: string): void {
    if (!this.queues.has(name)) this.queues.set(name, { binding, ready: [], unacked: new Map() });
  }

  /** Messages in a durable queue that were not acked yet (ready or delivered). */
  queueDepth(name: string): number {
    const q = this.queues.get(name);
    return q ? q.ready.length + q.unacked.size : 0;
  }

  /** Publishes `body` to amq.topic with `routingKey`, as the app server does. */
  publish(routingKey: string, body: string): void {
    for (const sub of this.liveSubscriptions()) {
      if (sub.destination === EXCHANGE_PREFIX + routingKey) this.deliver(sub, body, null);
    }
    for (const [name, q] of this.queues) {
      if (!topicMatches(q.binding, routingKey)) continue;
      q.ready.push({ body, redelivered: false, order: this.queued++ });
      this.dispatch(name);
    }
  }

  /** Sends the receipts held while `answerReceipts` was false. */
  releaseReceipts(): void {
    for (const { socket, receiptId } of this.heldReceipts.splice(0)) socket.push({ command: 'RECEIPT', headers: { 'receipt-id': receiptId }, body: '' });
  }

  /** @internal A frame from a client. */
  handle(socket: FakeStompSocket, frame: StompFrame): void {
    this.received.push({ socket, frame });
    const handler = this.handlers[frame.command] ?? ((f: StompFrame) => socket.push({ command: 'ERROR', headers: { message: `unknown command ${f.command}` }, body: '' }));
    handler(frame, socket);
  }

  /** @internal The socket ended: its subscriptions go, a durable queue's unacked messages go back. */
  ended(socket: FakeStompSocket): void {
    for (const [name, q] of this.queues) {
      let requeued = false;
      for (const [ackId, { message, subscription }] of q.unacked) {
        if (subscription.socket !== socket) continue;
        q.unacked.delete(ackId);
        q.ready.push({ ...message, redelivered: true });
        requeued = true;
      }
      if (requeued) {
        q.ready.sort((a, b) => a.order - b.order);
        this.dispatch(name);
      }
    }
  }

  private readonly handlers: Record<string, (frame: StompFrame, socket: FakeStompSocket) => void> = {
    CONNECT: (frame, socket) => this.onConnect(frame, socket),
    STOMP: (frame, socket) => this.onConnect(frame, socket),
    SUBSCRIBE: (frame, socket) => {
      const { id = '', destination = '', receipt } = frame.headers;
      const ack = (frame.headers.ack ?? 'auto') as Subscription['ack'];
      const prefetch = Number(frame.headers['prefetch-count'] ?? 0);
      if (destination.startsWith(QUEUE_PREFIX) && !this.queues.has(destination.slice(QUEUE_PREFIX.length))) {
        socket.push({ command: 'ERROR', headers: { message: 'not_found', 'receipt-id': receipt ?? '' }, body: `no queue ${destination}` });
        socket.cut(1000);
        return;
      }
      socket.subscriptions.set(id, { id, destination, ack, prefetch, socket });
      if (receipt !== undefined) {
        if (this.answerReceipts) socket.push({ command: 'RECEIPT', headers: { 'receipt-id': receipt }, body: '' });
        else this.heldReceipts.push({ socket, receiptId: receipt });
      }
      if (destination.startsWith(QUEUE_PREFIX)) this.dispatch(destination.slice(QUEUE_PREFIX.length));
    },
    UNSUBSCRIBE: (frame, socket) => {
      socket.subscriptions.delete(frame.headers.id ?? '');
    },
    ACK: (frame) => {
      const ackId = frame.headers.id ?? '';
      for (const [name, q] of this.queues) {
        if (q.unacked.delete(ackId)) this.dispatch(name);
      }
    },
    NACK: () => undefined,
    DISCONNECT: (frame, socket) => {
      if (frame.headers.receipt !== undefined) socket.push({ command: 'RECEIPT', headers: { 'receipt-id': frame.headers.receipt }, body: '' });
      socket.cut(1000);
    },
  };

  private onConnect(frame: StompFrame, socket: FakeStompSocket): void {
    const answer = this.connectAnswer(frame, socket);
    if (answer === 'silent') return;
    if (answer !== 'connected') {
      // RabbitMQ answers a refused login with ERROR and closes the connection.
      socket.push({ command: 'ERROR', headers: { message: answer.error }, body: '' });
      socket.cut(1000);
      return;
    }
    socket.stompConnected = true;
    socket.push({
      command: 'CONNECTED',
      headers: { version: '1.2', 'heart-beat': this.heartBeat.join(','), server: 'fake-stomp/1.0', session: `session-${this.sockets.indexOf(socket)}` },
      body: '',
    });
    // Heart-beats from the server as negotiated (STOMP 1.2 §heart-beating): every max(sx, cy) ms.
    const serverOutgoing = this.heartBeat[0];
    const clientIncoming = Number((frame.headers['heart-beat'] ?? '0,0').split(',')[1] ?? 0);
    if (serverOutgoing > 0 && clientIncoming > 0) socket.startHeartbeats(Math.max(serverOutgoing, clientIncoming));
  }

  private *liveSubscriptions(): Generator<Subscription> {
    for (const s of this.sockets) if (s.readyState === StompSocketState.OPEN) yield* s.subscriptions.values();
  }

  /** Hands a durable queue's ready messages to its consumers, within their prefetch. */
  private dispatch(name: string): void {
    const q = this.queues.get(name);
    if (!q) return;
    const consumers = [...this.liveSubscriptions()].filter((s) => s.destination === QUEUE_PREFIX + name);
    for (const sub of consumers) {
      while (q.ready.length > 0) {
        const inFlight = [...q.unacked.values()].filter((u) => u.subscription === sub).length;
        if (sub.ack !== 'auto' && sub.prefetch > 0 && inFlight >= sub.prefetch) break;
        const message = q.ready.shift() as QueuedMessage;
        const ackId = this.deliver(sub, message.body, message.redelivered);
        if (sub.ack !== 'auto') q.unacked.set(ackId, { message, subscription: sub });
      }
    }
  }

  private deliver(sub: Subscription, body: string, redelivered: boolean | null): string {
    const messageId = `T_${sub.id}@@${++this.deliveries}`;
    const headers: Record<string, string> = {
      subscription: sub.id,
      destination: sub.destination,
      'message-id': messageId,
      'content-type': 'application/json',
    };
    if (sub.ack !== 'auto') headers.ack = messageId;
    if (redelivered !== null) headers.redelivered = String(redelivered);
    sub.socket.push({ command: 'MESSAGE', headers, body });
    return messageId;
  }
}

/** One client's WebSocket, as the client sees it; the test drives the far end through the server. */
export class FakeStompSocket implements IStompSocket {
  onclose: ((ev?: unknown) => unknown) | undefined | null = null;
  onerror: ((ev: unknown) => unknown) | undefined | null = null;
  onmessage: ((ev: unknown) => unknown) | undefined | null = null;
  onopen: ((ev?: unknown) => unknown) | undefined | null = null;
  binaryType = 'arraybuffer';
  readyState: number = StompSocketState.CONNECTING;
  /** Set once the server answered CONNECT with CONNECTED. */
  stompConnected = false;
  /** Heart-beats (bare EOLs) the client sent. */
  heartbeatsReceived = 0;
  /** While true the server sends nothing at all, heart-beats included: a dead link the socket has not noticed. */
  silent = false;
  readonly subscriptions = new Map<string, Subscription>();
  /** How the socket ended, once it has. */
  closeCode: number | null = null;
  private buffer = '';
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly server: FakeStompServer,
    readonly url: string,
    readonly protocols: string[],
  ) {
    soon(() => {
      if (this.readyState !== StompSocketState.CONNECTING) return;
      if (server.down.has(url)) {
        this.readyState = StompSocketState.CLOSED;
        this.closeCode = 1006;
        this.onerror?.({ type: 'error' });
        this.onclose?.({ code: 1006, reason: '', wasClean: false });
        return;
      }
      this.readyState = StompSocketState.OPEN;
      this.onopen?.({ type: 'open' });
    });
  }

  /** Client → server. Like a browser, throws while connecting and ignores data once closing. */
  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    if (this.readyState === StompSocketState.CONNECTING) throw new Error('InvalidStateError: still connecting');
    if (this.readyState !== StompSocketState.OPEN) return;
    if (typeof data !== 'string') throw new Error('the fake STOMP server takes text frames only');
    const { frames, rest, heartbeats } = parseFrames(this.buffer + data);
    this.buffer = rest;
    this.heartbeatsReceived += heartbeats;
    for (const frame of frames) this.server.handle(this, frame);
  }

  /** The client closes: closing at once, closed (a clean close event) a moment later. */
  close(): void {
    if (this.readyState === StompSocketState.CLOSED || this.readyState === StompSocketState.CLOSING) return;
    this.readyState = StompSocketState.CLOSING;
    // On a dead link the closing handshake never completes: the close event would come only when TCP gives up.
    if (this.silent) return;
    soon(() => this.finish(1005, true));
  }

  /** Server → client, as a macrotask; dropped if `dropOutgoing` says so or the socket is gone or silent. */
  push(frame: StompFrame): void {
    if (this.server.dropOutgoing(frame, this)) return;
    const data = serializeFrame(frame);
    soon(() => {
      if (this.readyState === StompSocketState.OPEN && !this.silent) this.onmessage?.({ data });
    });
  }

  /**
   * The server or the network ends the connection (1006: node killed, cable pulled). Frames
   * already on their way are delivered first, as TCP would.
   */
  cut(code = 1006): void {
    if (this.readyState === StompSocketState.CLOSED) return;
    soon(() => this.finish(code, code === 1000));
  }

  /** @internal */
  startHeartbeats(everyMs: number): void {
    this.heartbeatTimer = setInterval(() => {
      if (this.readyState === StompSocketState.OPEN && !this.silent) this.onmessage?.({ data: '\n' });
    }, everyMs);
  }

  private finish(code: number, wasClean: boolean): void {
    if (this.readyState === StompSocketState.CLOSED) return;
    this.readyState = StompSocketState.CLOSED;
    this.closeCode = code;
    clearInterval(this.heartbeatTimer);
    this.server.ended(this);
    this.onclose?.({ code, reason: '', wasClean });
  }
}
