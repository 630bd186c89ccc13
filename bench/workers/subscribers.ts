/**
 * Child process: connects a share of the benchmark's subscribers (STOMP, Socket.IO or bare
 * WebSocket), records POST→receive latency of every message (the poster puts its send time in
 * the body) and the distinct messages each client got, for the loss check.
 */
import { loopbackSource } from '../../testkit/loopback-source';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { connectStompLite } from '../lib/stomp-lite';
import { workerMain } from '../../testkit/workers';

export type ClientSpec =
  | { kind: 'stomp'; url: string; login: string; passcode: string; destinations: string[]; room: string }
  | { kind: 'socketio'; url: string; room: string }
  | { kind: 'ws'; url: string; room: string };

export interface SubscribersParams {
  clients: ClientSpec[];
  /** CA certificate (PEM) to trust for wss:// URLs. */
  ca?: string;
  /** How many clients connect at once. */
  concurrency: number;
  heartbeatMs: number;
}

export interface SubscribersResult {
  latencies: number[];
  clients: { room: string; distinct: number; duplicates: number }[];
  connected: number;
  /** Connections that ended before the benchmark stopped them. */
  dropped: number;
  /** Why they ended: reason → count. */
  dropReasons: Record<string, number>;
  failed: number;
  connectWallMs: number;
  firstError?: string;
}

interface Tracker {
  room: string;
  seen: Set<string>;
  duplicates: number;
  /** Why the connection ended before the benchmark asked it to. */
  dropped?: string;
  close: () => void;
}

/** Milliseconds since the epoch with sub-millisecond resolution, comparable across processes. */
const now = (): number => performance.timeOrigin + performance.now();
let stopping = false;

function track(t: Tracker, latencies: number[], id: unknown, sentAt: unknown): void {
  if (typeof id !== 'string') return;
  if (t.seen.has(id)) {
    t.duplicates++;
    return;
  }
  t.seen.add(id);
  if (typeof sentAt === 'number') latencies.push(now() - sentAt);
}

function connectOne(spec: ClientSpec, p: SubscribersParams, latencies: number[]): Promise<Tracker> {
  const t: Tracker = { room: spec.room, seen: new Set(), duplicates: 0, close: () => undefined };
  let connected = false;
  // From a random loopback address, as real clients come from many: from 127.0.0.1 alone the
  // proxy's per-address limit would stop them at a quarter of its descriptors.
  const wsOptions = { ca: p.ca, rejectUnauthorized: Boolean(p.ca), localAddress: loopbackSource() };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connect timeout ${spec.url}`)), 30_000);
    const ok = (): void => {
      connected = true;
      clearTimeout(timer);
      resolve(t);
    };
    const fail = (e: Error): void => {
      if (connected) {
        if (!stopping) t.dropped ??= e.message;
        return;
      }
      clearTimeout(timer);
      reject(e);
    };
    if (spec.kind === 'stomp') {
      connectStompLite({
        url: spec.url,
        wsOptions,
        login: spec.login,
        passcode: spec.passcode,
        heartbeatMs: p.heartbeatMs,
        destinations: spec.destinations,
        onMessage: (body) => {
          const msg = JSON.parse(body) as { id?: unknown; body?: { sentAt?: unknown } };
          track(t, latencies, msg.id, msg.body?.sentAt);
        },
        onDrop: (reason) => fail(new Error(reason)),
      }).then((c) => {
        t.close = () => c.close();
        ok();
      }, fail);
    } else if (spec.kind === 'socketio') {
      const socket: Socket = io(spec.url, { transports: ['websocket'], reconnection: false, ca: p.ca, rejectUnauthorized: Boolean(p.ca) });
      // Baseline (b) emits the posted body with its id; (b') emits roomcast's RoomMessage, whose body holds sentAt.
      socket.on('message', (msg: { id?: unknown; sentAt?: unknown; body?: { sentAt?: unknown } }) => track(t, latencies, msg.id, msg.sentAt ?? msg.body?.sentAt));
      socket.on('connect', () => socket.emit('join', spec.room, () => ok()));
      socket.on('connect_error', (e: Error) => fail(e));
      socket.on('disconnect', () => fail(new Error('disconnected')));
      t.close = () => socket.close();
    } else {
      const ws = new WebSocket(`${spec.url}?room=${encodeURIComponent(spec.room)}`, wsOptions);
      ws.on('message', (data: Buffer) => {
        const msg = JSON.parse(data.toString('utf8')) as { id?: unknown; sentAt?: unknown };
        track(t, latencies, msg.id, msg.sentAt);
      });
      ws.on('open', () => ok());
      ws.on('error', (e: Error) => fail(e));
      ws.on('close', () => fail(new Error('closed')));
      t.close = () => ws.close();
    }
  });
}

workerMain<SubscribersParams, SubscribersResult>(async (p, stopped, ready) => {
  const latencies: number[] = [];
  const trackers: Tracker[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const started = Date.now();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < p.clients.length) {
      const spec = p.clients[next++] as ClientSpec;
      try {
        trackers.push(await connectOne(spec, p, latencies));
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, p.concurrency) }, lane));
  const connectWallMs = Date.now() - started;
  ready();
  await stopped;
  stopping = true;
  const dropReasons: Record<string, number> = {};
  // Counted by kind: "no data from the server for 20135 ms" and "… 20304 ms" are one reason.
  for (const t of trackers) {
    if (!t.dropped) continue;
    const reason = t.dropped.replace(/\d+/g, 'N');
    dropReasons[reason] = (dropReasons[reason] ?? 0) + 1;
  }
  const dropped = trackers.filter((t) => t.dropped).length;
  for (const t of trackers) t.close();
  return {
    dropped,
    dropReasons,
    latencies,
    clients: trackers.map((t) => ({ room: t.room, distinct: t.seen.size, duplicates: t.duplicates })),
    connected: trackers.length,
    failed,
    connectWallMs,
    firstError,
  };
});
