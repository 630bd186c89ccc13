/**
 * The client library on its own, in Node (as a load test would run it), with a WebSocket
 * factory that drops frames: a resync after a silence recovers what the socket lost.
 */
import type { IStompSocket } from '@stomp/stompjs';
import WebSocket from 'ws';
import { PASSWORD, chat, makeRoom, type TestUser } from '../../server/test/helpers/harness';
import { RoomClient, RoomClientError, RoomcastApi, type ConnectionState, type WebSocketFactory } from '../../web/src/client/index';
import { expect, test } from '../support/fixtures';

/** A `ws` socket that hides incoming frames for which `drop` says so, as a lossy path would. */
class LossySocket implements IStompSocket {
  onclose: IStompSocket['onclose'] = null;
  onerror: IStompSocket['onerror'] = null;
  onmessage: IStompSocket['onmessage'] = null;
  onopen: IStompSocket['onopen'] = null;
  private readonly ws: WebSocket;

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

test('in Node, a resync after a silence recovers messages whose frames were dropped', async ({ roomcast }) => {
  const { harness } = roomcast;
  const room = await makeRoom(harness, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const api = new RoomcastApi({ baseUrl: harness.server.url });
  await api.login(ann.username, PASSWORD);
  const lossy: WebSocketFactory = (url, protocols) => new LossySocket(url, protocols, (frame) => frame.startsWith('MESSAGE') && frame.includes('lost in transit'));
  // The library alone, straight to the Web-STOMP nodes: what is under test is its resync, not the proxy.
  const stompUrls = harness.config.rabbitmq.nodes.map((n) => `ws://127.0.0.1:${n.webStompPort}/ws`);
  const client = new RoomClient({ api, roomId: room.id, stompUrls, webSocketFactory: lossy, silenceResyncMs: 1500 });
  const states: ConnectionState[] = [];
  client.on('state', (s) => states.push(s));
  client.start();
  try {
    await expect.poll(() => client.state).toBe('live');
    const sent: string[] = [];
    for (const text of ['kept 1', 'lost in transit 1', 'lost in transit 2', 'kept 2']) {
      expect((await bob.api.post(`/api/rooms/${room.id}/messages`, chat(text))).status).toBe(201);
      sent.push(text);
    }
    await expect.poll(() => client.messages.map((m) => m.body.text)).toEqual(sent);
    // Still on its first connection: the lost ones came from a resync after the silence.
    expect(states.slice(0, 3)).toEqual(['connecting', 'resyncing', 'live']);
    expect(states.slice(3)).not.toContain('connecting');
    expect(states.slice(3)).toContain('resyncing');
  } finally {
    await client.stop({ leave: true });
  }
});

test('the client refuses misspelled options instead of silently using defaults', async ({ roomcast }) => {
  const api = new RoomcastApi({ baseUrl: roomcast.harness.server.url });
  const options = { api, roomId: 'r', stompUrls: ['ws://127.0.0.1:1/ws'], heartbeatMS: 5000 } as never;
  expect(() => new RoomClient(options)).toThrow(RoomClientError);
  expect(() => new RoomClient(options)).toThrow('unknown option heartbeatMS');
});
