/**
 * One STOMP connection (BrokerLink) through the real @stomp/stompjs client against the fake
 * Web-STOMP node (fake-stomp-server.ts), on fake time: what opening, subscribing, a refusal,
 * a dead node, a cut and a missed heart-beat each do.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BrokerLink } from '../src/client/broker-link';
import type { BrokerError } from '../src/client/errors';
import { FakeStompServer } from './fake-stomp-server';

const URL_A = 'wss://node-a.test/ws';
const token = { login: 'user-1', passcode: 'passcode-1', expiresAt: '2030-01-01T00:00:00.000Z' };

/** Lets every socket event and promise already due run, without moving the clock. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (condition()) return;
    await vi.advanceTimersByTimeAsync(0);
  }
  throw new Error(`never happened: ${what}`);
}

/** Follows a promise so a test can ask whether it settled yet. */
function track<T>(p: Promise<T>): { settled: () => boolean; value: () => T | undefined; error: () => unknown } {
  let done = false;
  let value: T | undefined;
  let error: unknown;
  p.then(
    (v) => ((done = true), (value = v)),
    (e: unknown) => ((done = true), (error = e)),
  );
  return { settled: () => done, value: () => value, error: () => error };
}

const open = (server: FakeStompServer, options: { heartbeatMs?: number; connectTimeoutMs?: number } = {}) =>
  track(
    BrokerLink.open({
      url: URL_A,
      token,
      webSocketFactory: server.factory,
      heartbeatMs: options.heartbeatMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    }),
  );

async function connected(server: FakeStompServer, options?: { heartbeatMs?: number }): Promise<BrokerLink> {
  const link = open(server, options);
  await until(link.settled, 'BrokerLink.open settles');
  const l = link.value();
  if (!l) throw link.error();
  return l;
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('BrokerLink.open', () => {
  it('connects with the token in CONNECT and resolves on CONNECTED', async () => {
    const server = new FakeStompServer();
    const link = await connected(server);
    expect(link.open).toBe(true);
    const [connect] = server.sent('CONNECT');
    expect(connect?.headers).toMatchObject({ login: 'user-1', passcode: 'passcode-1', host: '/', 'heart-beat': '10000,10000' });
    expect(connect?.headers['accept-version']).toContain('1.2');
    expect(server.latest.url).toBe(URL_A);
  });

  it('rejects with broker_refused and the broker reason when CONNECT gets an ERROR', async () => {
    const server = new FakeStompServer();
    server.connectAnswer = () => ({ error: 'access_refused' });
    const link = open(server);
    await until(link.settled, 'open settles');
    expect(link.value()).toBeUndefined();
    expect(link.error()).toMatchObject({ name: 'BrokerError', code: 'broker_refused' });
    expect((link.error() as BrokerError).message).toContain('access_refused');
  });

  it('rejects with broker_disconnected when the node is down', async () => {
    const server = new FakeStompServer();
    server.down.add(URL_A);
    const link = open(server);
    await until(link.settled, 'open settles');
    expect(link.error()).toMatchObject({ code: 'broker_disconnected' });
    expect(server.sent('CONNECT')).toEqual([]);
  });

  it('gives up when CONNECTED has not come within connectTimeoutMs', async () => {
    const server = new FakeStompServer();
    server.connectAnswer = () => 'silent';
    const link = open(server, { connectTimeoutMs: 5_000 });
    await vi.advanceTimersByTimeAsync(4_900);
    expect(link.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    await until(link.settled, 'open settles');
    expect(link.error()).toMatchObject({ code: 'broker_disconnected' });
  });
});

describe('BrokerLink.subscribe', () => {
  it('sends SUBSCRIBE with a receipt and resolves only when the RECEIPT arrives', async () => {
    const server = new FakeStompServer();
    server.answerReceipts = false;
    const link = await connected(server);
    const bound = track(link.subscribe('/exchange/amq.topic/room.x.all', { ack: 'auto' }, () => undefined));
    await until(() => server.heldReceipts.length === 1, 'the SUBSCRIBE reached the server');
    const [subscribe] = server.sent('SUBSCRIBE');
    expect(subscribe?.headers).toMatchObject({ destination: '/exchange/amq.topic/room.x.all', ack: 'auto' });
    expect(subscribe?.headers.receipt).toBeTruthy();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(bound.settled()).toBe(false);
    server.releaseReceipts();
    await until(bound.settled, 'subscribe resolves');
    expect(bound.error()).toBeUndefined();
  });

  it('delivers MESSAGE frames of the subscription to its handler', async () => {
    const server = new FakeStompServer();
    const link = await connected(server);
    const bodies: string[] = [];
    await link.subscribe('/exchange/amq.topic/room.x.all', {}, (m) => bodies.push(m.body));
    server.publish('room.x.all', '{"n":1}');
    server.publish('room.x.other', '{"n":2}');
    server.publish('room.x.all', '{"n":3}');
    await until(() => bodies.length === 2, 'two messages arrive');
    expect(bodies).toEqual(['{"n":1}', '{"n":3}']);
  });

  it('rejects a subscribe still waiting for its receipt when the socket closes', async () => {
    const server = new FakeStompServer();
    server.answerReceipts = false;
    const link = await connected(server);
    const bound = track(link.subscribe('/exchange/amq.topic/room.x.all', {}, () => undefined));
    await until(() => server.heldReceipts.length === 1, 'the SUBSCRIBE reached the server');
    server.latest.cut();
    await until(bound.settled, 'subscribe settles');
    expect(bound.error()).toMatchObject({ code: 'broker_disconnected' });
  });
});

describe('BrokerLink.closed', () => {
  it('settles with broker_disconnected and the close code when the socket is cut', async () => {
    const server = new FakeStompServer();
    const link = await connected(server);
    const closed = track(link.closed);
    server.latest.cut(1006);
    await until(closed.settled, 'closed settles');
    expect(closed.value()).toMatchObject({ code: 'broker_disconnected' });
    expect(closed.value()?.message).toContain('1006');
    expect(link.open).toBe(false);
  });

  it('drops the socket at once when the broker misses its heart-beats', async () => {
    const server = new FakeStompServer();
    server.heartBeat = [1_000, 1_000];
    const link = await connected(server, { heartbeatMs: 1_000 });
    const closed = track(link.closed);
    // Heart-beats flow both ways: the link stays up.
    await vi.advanceTimersByTimeAsync(30_000);
    expect(closed.settled()).toBe(false);
    expect(server.latest.heartbeatsReceived).toBeGreaterThan(10);
    // The link dies without the socket noticing: nothing more comes from the broker.
    server.latest.silent = true;
    await vi.advanceTimersByTimeAsync(10_000);
    await until(closed.settled, 'closed settles');
    expect(closed.value()).toMatchObject({ code: 'broker_disconnected' });
    expect(link.open).toBe(false);
  });

  it('close() sends DISCONNECT and resolves once the socket has closed', async () => {
    const server = new FakeStompServer();
    const link = await connected(server);
    const closing = track(link.close());
    await until(closing.settled, 'close resolves');
    expect(server.sent('DISCONNECT')).toHaveLength(1);
    expect(server.latest.closeCode).not.toBeNull();
    expect(link.open).toBe(false);
  });
});
