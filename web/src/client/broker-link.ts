/**
 * One STOMP connection to the broker: opened once, never reconnected by itself (the room
 * client owns reconnecting, with a fresh token and the next URL each time). `closed` says
 * why it ended.
 */
import { Client, TickerStrategy, Versions, type IFrame, type IMessage, type IStompSocket, type StompHeaders } from '@stomp/stompjs';
import type { BrokerToken } from '../../../shared/protocol/messages';
import { BrokerError } from './errors';

/**
 * Makes the WebSocket for a connection. Browsers use `new WebSocket(url, protocols)`; Node
 * passes the `ws` package; tests wrap either to drop, delay or cut frames.
 */
export type WebSocketFactory = (url: string, protocols: string[]) => IStompSocket;

export interface BrokerLinkOptions {
  url: string;
  token: BrokerToken;
  webSocketFactory: WebSocketFactory;
  /** STOMP heart-beats, both directions. */
  heartbeatMs: number;
  /** Gives up when CONNECTED has not arrived by then. */
  connectTimeoutMs: number;
}

let receipts = 0;

export class BrokerLink {
  private ended = false;

  private constructor(
    private readonly client: Client,
    /** Settles once, with the reason, when the connection is over. */
    readonly closed: Promise<BrokerError>,
  ) {}

  /** Connects; rejects with a BrokerError if the socket closes or the broker refuses first. */
  static open(options: BrokerLinkOptions): Promise<BrokerLink> {
    return new Promise((resolve, reject) => {
      let refusal: IFrame | null = null;
      let end!: (reason: BrokerError) => void;
      const closed = new Promise<BrokerError>((r) => (end = r));
      const client = new Client({
        webSocketFactory: () => options.webSocketFactory(options.url, Versions.default.protocolVersions()),
        connectHeaders: { login: options.token.login, passcode: options.token.passcode, host: '/' },
        heartbeatIncoming: options.heartbeatMs,
        heartbeatOutgoing: options.heartbeatMs,
        // A worker keeps outgoing heart-beats on time in a background tab (where timers are throttled).
        heartbeatStrategy: TickerStrategy.Worker,
        // A missed heart-beat drops the socket at once instead of waiting for TCP to notice.
        discardWebsocketOnCommFailure: true,
        connectionTimeout: options.connectTimeoutMs,
        reconnectDelay: 0,
        debug: () => undefined,
        onConnect: () => resolve(link),
        onStompError: (frame) => {
          refusal = frame;
        },
        onWebSocketClose: (event?: { code?: number; reason?: string }) => {
          const reason = refusal
            ? new BrokerError('broker_refused', `the broker refused: ${refusal.headers.message ?? 'no reason given'}`)
            : new BrokerError('broker_disconnected', `the connection to ${options.url} closed (code ${event?.code ?? '?'})`);
          link.ended = true;
          end(reason);
          reject(reason);
          // Marks the stompjs client inactive; it has no socket left to close.
          void client.deactivate();
        },
      });
      const link = new BrokerLink(client, closed);
      client.activate();
    });
  }

  /** False once the socket has closed. */
  get open(): boolean {
    return !this.ended;
  }

  /** Subscribes and resolves once the broker has bound it (its RECEIPT), so nothing published after is missed. */
  subscribe(destination: string, headers: StompHeaders, onMessage: (message: IMessage) => void): Promise<void> {
    const receipt = `sub-${++receipts}`;
    return new Promise((resolve, reject) => {
      void this.closed.then(reject);
      this.client.watchForReceipt(receipt, () => resolve());
      this.client.subscribe(destination, onMessage, { ...headers, receipt });
    });
  }

  /** Ends the connection politely (DISCONNECT); resolves once the socket is closed. */
  close(): Promise<void> {
    return this.client.deactivate();
  }
}
