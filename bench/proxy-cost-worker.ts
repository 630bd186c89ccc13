/**
 * Child process of bench/proxy-cost.ts: either the poster (POSTs messages at a fixed rate,
 * each carrying its send time) or a share of the STOMP subscribers (record the POST→receive
 * latency of every message). Load runs here, not in the orchestrator, so generating it does
 * not share an event loop with measuring it.
 *
 * IPC: the parent sends {type:'start', params}; the child answers {type:'ready'} once
 * connected; the parent sends {type:'stop'}; the child answers {type:'result', result}.
 */
import http from 'node:http';
import https from 'node:https';
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const now = (): number => performance.timeOrigin + performance.now();

export interface PosterParams {
  role: 'poster';
  baseUrl: string;
  ca?: string;
  /** One instructor session per room; messages go round robin over the rooms. */
  rooms: { id: string; token: string }[];
  ratePerSecond: number;
  warmupMs: number;
  durationMs: number;
  /** Open-loop sending stops adding requests beyond this many unanswered. */
  maxInFlight: number;
}

export interface PosterResult {
  /** Measured (non-warm-up) messages answered 201, per room id. */
  createdPerRoom: Record<string, number>;
  statuses: Record<string, number>;
  postLatencies: number[];
  skipped: number;
}

export interface SubscriberParams {
  role: 'subscribers';
  ca?: string;
  clients: { url: string; login: string; passcode: string; destination: string }[];
  concurrency: number;
  heartbeatMs: number;
}

export interface SubscriberResult {
  latencies: number[];
  delivered: number;
  dropped: number;
}

export type WorkerParams = PosterParams | SubscriberParams;
type Running = { stop(): Promise<unknown> };

function send(message: unknown, then?: () => void): void {
  process.send?.(message, undefined, {}, () => then?.());
}

async function startPoster(p: PosterParams): Promise<Running> {
  const url = new URL(p.baseUrl);
  const agent = url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ca: p.ca, maxSockets: 64 }) : new http.Agent({ keepAlive: true, maxSockets: 64 });
  const request = url.protocol === 'https:' ? https.request : http.request;
  const result: PosterResult = { createdPerRoom: {}, statuses: {}, postLatencies: [], skipped: 0 };
  let inFlight = 0;
  let sent = 0;
  let counter = 0;
  const started = now();
  const end = started + p.warmupMs + p.durationMs;

  const post = (): void => {
    const room = p.rooms[sent % p.rooms.length]!;
    sent++;
    const sentAt = now();
    const warm = sentAt < started + p.warmupMs;
    const body = JSON.stringify({
      clientMsgId: `bench-${process.pid}-${++counter}`,
      audience: 'everyone',
      kind: 'chat',
      body: { text: 'proxy cost', sentAt, warm },
    });
    inFlight++;
    const req = request(
      { host: url.hostname, port: url.port, path: `/api/rooms/${room.id}/messages`, method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: `Bearer ${room.token}` } },
      (res) => {
        res.resume();
        res.on('end', () => {
          inFlight--;
          const status = String(res.statusCode);
          result.statuses[status] = (result.statuses[status] ?? 0) + 1;
          if (!warm && res.statusCode === 201) {
            result.createdPerRoom[room.id] = (result.createdPerRoom[room.id] ?? 0) + 1;
            result.postLatencies.push(now() - sentAt);
          }
        });
      },
    );
    req.on('error', () => {
      inFlight--;
      result.statuses.error = (result.statuses.error ?? 0) + 1;
    });
    req.end(body);
  };

  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  // Open loop: each tick sends what the schedule says is due, whatever the latency.
  const tick = setInterval(() => {
    const t = now();
    const due = Math.floor(((Math.min(t, end) - started) / 1000) * p.ratePerSecond);
    while (sent < due) {
      if (inFlight >= p.maxInFlight) {
        result.skipped += due - sent;
        sent = due;
        break;
      }
      post();
    }
    if (t >= end) {
      clearInterval(tick);
      const drain = setInterval(() => {
        if (inFlight === 0 || now() > end + 10_000) {
          clearInterval(drain);
          done();
        }
      }, 20);
    }
  }, 5);
  send({ type: 'ready' });
  return {
    async stop() {
      await finished;
      agent.destroy();
      return result;
    },
  };
}

async function startSubscribers(p: SubscriberParams): Promise<Running> {
  const result: SubscriberResult = { latencies: [], delivered: 0, dropped: 0 };
  const clients: Client[] = [];
  let stopping = false;
  const connectOne = (spec: SubscriberParams['clients'][number]): Promise<void> =>
    new Promise((resolve, reject) => {
      let connected = false;
      const client = new Client({
        webSocketFactory: () => new WebSocket(spec.url, ['v12.stomp'], { ca: p.ca }),
        connectHeaders: { login: spec.login, passcode: spec.passcode, host: '/' },
        reconnectDelay: 0,
        heartbeatIncoming: p.heartbeatMs,
        heartbeatOutgoing: p.heartbeatMs,
        debug: () => undefined,
        onConnect: () => {
          connected = true;
          const receipt = `r-${clients.length}`;
          client.watchForReceipt(receipt, () => resolve());
          client.subscribe(
            spec.destination,
            (m) => {
              const t = now();
              const body = (JSON.parse(m.body) as { body: { sentAt: number; warm: boolean } }).body;
              if (body.warm) return;
              result.delivered++;
              result.latencies.push(t - body.sentAt);
            },
            { receipt },
          );
        },
        onStompError: (f) => {
          if (!connected) reject(new Error(`STOMP ERROR ${f.headers.message ?? ''}`));
        },
        onWebSocketClose: () => {
          if (!connected) reject(new Error('closed before CONNECTED'));
          else if (!stopping) result.dropped++;
        },
      });
      clients.push(client);
      client.activate();
    });

  const queue = [...p.clients];
  await Promise.all(
    Array.from({ length: p.concurrency }, async () => {
      for (let spec = queue.shift(); spec; spec = queue.shift()) await connectOne(spec);
    }),
  );
  send({ type: 'ready' });
  return {
    async stop() {
      stopping = true;
      await Promise.all(clients.map((c) => c.deactivate()));
      return result;
    },
  };
}

const roles: Record<WorkerParams['role'], (p: never) => Promise<Running>> = {
  poster: startPoster,
  subscribers: startSubscribers,
};

let running: Promise<Running> | null = null;
process.on('message', (msg: { type: 'start'; params: WorkerParams } | { type: 'stop' }) => {
  if (msg.type === 'start') {
    running = roles[msg.params.role](msg.params as never);
    running.catch((err: unknown) => {
      send({ type: 'error', message: (err as Error).message });
      process.exit(1);
    });
  } else if (msg.type === 'stop' && running) {
    void running
      .then((r) => r.stop())
      .then((result) => {
        // Disconnected once the result is written, so the (large) message is never cut short.
        send({ type: 'result', result }, () => process.disconnect());
      });
  }
});
