/**
 * A real STOMP client (@stomp/stompjs over `ws`) connected straight to a Web-STOMP node,
 * with helpers to collect frames and to observe the broker refusing something.
 */
import { Client, type IFrame, type IMessage, type StompHeaders } from '@stomp/stompjs';
import WebSocket, { type ClientOptions } from 'ws';
import type { Config } from '../runtime/config';
import type { RoomMessage } from '../shared/protocol/messages';

export interface StompSession {
  client: Client;
  /** ERROR frames the broker sent. */
  errors: IFrame[];
  /** Resolves with the WebSocket close code and reason when the socket closes. */
  closed: Promise<{ code: number; reason: string }>;
  disconnect(): Promise<void>;
}

export function webStompUrl(config: Config, node = 0): string {
  const n = config.rabbitmq.nodes[node % config.rabbitmq.nodes.length];
  if (!n) throw new Error('no RabbitMQ node configured');
  return n.webStompUrl;
}

export interface StompConnectOptions {
  /** Options of the `ws` socket, e.g. `{ ca }` to trust a test certificate on a `wss://` URL. */
  webSocket?: ClientOptions;
}

/** Connects; rejects with the broker's ERROR message (or the close) if CONNECT is refused. */
export function connectStomp(url: string, login: string, passcode: string, options: StompConnectOptions = {}): Promise<StompSession> {
  return new Promise((resolve, reject) => {
    const errors: IFrame[] = [];
    let connected = false;
    let onClosed!: (e: { code: number; reason: string }) => void;
    const closed = new Promise<{ code: number; reason: string }>((r) => (onClosed = r));
    const client = new Client({
      webSocketFactory: () => new WebSocket(url, ['v12.stomp'], options.webSocket),
      connectHeaders: { login, passcode, host: '/' },
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: () => undefined,
      onConnect: () => {
        connected = true;
        resolve({
          client,
          errors,
          closed,
          disconnect: async () => {
            await client.deactivate();
          },
        });
      },
      onStompError: (frame) => {
        errors.push(frame);
        if (!connected) reject(new Error(`STOMP ERROR: ${frame.headers.message ?? ''} ${frame.body}`));
      },
      onWebSocketClose: (e: { code: number; reason: string }) => {
        onClosed({ code: e.code, reason: e.reason });
        if (!connected) reject(new Error('socket closed before CONNECTED'));
      },
    });
    client.activate();
  });
}

/** Subscribes (waiting until the subscription is bound) and records every message body in arrival order. */
export async function collect(
  session: StompSession,
  destination: string,
  headers: StompHeaders = {},
  onMessage?: (m: IMessage) => void,
): Promise<RoomMessage[]> {
  const got: RoomMessage[] = [];
  await subscribeWithReceipt(
    session,
    destination,
    (m) => {
      got.push(JSON.parse(m.body) as RoomMessage);
      onMessage?.(m);
    },
    headers,
  );
  return got;
}

/**
 * Polls `check` every `everyMs` until it returns true; fails with `what` after `timeoutMs`.
 * Benchmarks poll less often (a check that reads a whole Maildir or a table costs).
 */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Proves a subscription is live before a test relies on it: RabbitMQ binds the subscription
 * queue asynchronously to the SUBSCRIBE frame, and a RECEIPT arrives only once it is bound.
 */
export function subscribeWithReceipt(
  session: StompSession,
  destination: string,
  onMessage: (m: IMessage) => void,
  headers: StompHeaders = {},
): Promise<void> {
  const receipt = `r-${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve) => {
    session.client.watchForReceipt(receipt, () => resolve());
    session.client.subscribe(destination, onMessage, { ...headers, receipt });
  });
}

/** How many times the broker-auth service has said "deny" so far (from its metrics). */
export async function brokerDenials(config: Config): Promise<number> {
  const res = await fetch(`http://${config.brokerAuth.host}:${config.brokerAuth.port}/metrics`);
  const text = await res.text();
  let total = 0;
  for (const m of text.matchAll(/^roomcast_broker_auth_decisions_total\{[^}]*decision="deny"[^}]*\} (\d+)/gm)) total += Number(m[1]);
  return total;
}
