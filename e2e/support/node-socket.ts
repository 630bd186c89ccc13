/**
 * A `ws` socket for the client library in Node that a test can steer: hide incoming frames (a
 * lossy path), cut every open socket (a dropped connection), and refuse new ones until told
 * otherwise (a client that stays away while the room goes on).
 */
import type { IStompSocket } from '@stomp/stompjs';
import WebSocket from 'ws';
import type { WebSocketFactory } from '../../web/src/client/index';

class SteeredSocket implements IStompSocket {
  onclose: IStompSocket['onclose'] = null;
  onerror: IStompSocket['onerror'] = null;
  onmessage: IStompSocket['onmessage'] = null;
  onopen: IStompSocket['onopen'] = null;
  readonly ws: WebSocket;

  constructor(url: string, protocols: string[], drop: (frame: string) => boolean) {
    this.ws = new WebSocket(url, protocols);
    this.ws.onopen = (e) => this.onopen?.(e);
    this.ws.onclose = (e) => this.onclose?.(e);
    this.ws.onerror = (e) => this.onerror?.(e);
    this.ws.onmessage = (e) => {
      if (!drop(String(e.data))) this.onmessage?.(e);
    };
  }

  get url(): string {
    return this.ws.url;
  }
  get readyState(): number {
    return this.ws.readyState;
  }
  set binaryType(type: string) {
    this.ws.binaryType = type as 'arraybuffer';
  }
  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    this.ws.send(data as string);
  }
  close(): void {
    this.ws.close();
  }
}

export interface SocketControl {
  factory: WebSocketFactory;
  /** Ends every open socket abruptly, as a dead network path would. */
  cutAll(): void;
  /** While blocked, every new socket fails to connect. */
  block(blocked: boolean): void;
}

export function steeredSockets(drop: (frame: string) => boolean = () => false): SocketControl {
  const open = new Set<SteeredSocket>();
  let blocked = false;
  return {
    factory: (url, protocols) => {
      // A blocked attempt goes to a port nothing listens on, so it fails the way an unreachable node does.
      const socket = new SteeredSocket(blocked ? 'ws://127.0.0.1:9/ws' : url, protocols, drop);
      open.add(socket);
      socket.ws.once('close', () => open.delete(socket));
      return socket;
    },
    cutAll: () => {
      for (const s of open) s.ws.terminate();
    },
    block: (b) => {
      blocked = b;
    },
  };
}
