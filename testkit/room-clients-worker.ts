/**
 * Chaos worker: a share of the run's headless room clients, built on the same client library
 * as the web page (web/src/client). It records when each message was first shown, cuts
 * sockets when told to, and at the end reports every client's final, ordered view.
 *
 * Requests from the parent, each answered: {type:'cut', count} drops that many random live
 * sockets; {type:'states'} is answered with how many clients are in each connection state;
 * {type:'act', role, audience, body, spreadChoices?} has every client of that role send an
 * `action` message through its send queue (as a page's button does), answered with how many
 * were queued.
 */
import WebSocket from 'ws';
import type { IStompSocket } from '@stomp/stompjs';
import { RoomClient, RoomcastApi } from '../web/src/client/index';
import { loopbackSource } from './loopback-source';
import { spreadFetch } from './spread-fetch';
import { reply, workerMain } from './workers';

export interface ChaosClientSpec {
  userId: string;
  roomId: string;
  token: string;
  role: 'instructor' | 'learner';
}

export interface ChaosClientsParams {
  proxyUrl: string;
  ca: string;
  clients: ChaosClientSpec[];
  silenceResyncMs: number;
  /** Clients started per second; unset: all at once. Thousands at once only measure the storm they make. */
  startPerSecond?: number;
  /** Connect from random 127/8 addresses instead of 127.0.0.1: WebSockets each, HTTP over a few agents. */
  spreadSources?: boolean;
}

export interface ChaosClientView {
  userId: string;
  roomId: string;
  role: 'instructor' | 'learner';
  /** Message ids in the order the client holds them. */
  ids: string[];
  /** id → ms since epoch it was first shown. */
  shownAt: Record<string, number>;
  reconnects: number;
  finalState: string;
  /** Every connection state the client went through, with when it entered it (ms since epoch). */
  timeline: [at: number, state: string][];
  /** Every presence the client was shown: when, how many online, and (instructors) who. */
  presence: [at: number, online: number, members: string[] | null][];
}

export interface ChaosClientsResult {
  views: ChaosClientView[];
  cuts: number;
}

workerMain<ChaosClientsParams, ChaosClientsResult>(async (p, stopped, ready) => {
  const wssUrl = `${p.proxyUrl.replace(/^https/, 'wss')}/ws`;
  let cuts = 0;
  const live = new Set<WebSocket>();
  const factory = (url: string, protocols: string[]): IStompSocket => {
    // Each socket from its own loopback address, as browsers come from many: the proxy's
    // per-address share would otherwise refuse thousands of them (p.spreadSources).
    const ws = new WebSocket(url, protocols, { ca: p.ca, ...(p.spreadSources ? { localAddress: loopbackSource() } : {}) });
    live.add(ws);
    ws.on('close', () => live.delete(ws));
    return ws as unknown as IStompSocket;
  };
  const fetchFn = p.spreadSources ? spreadFetch(p.ca) : undefined;
  const entries = p.clients.map((spec) => {
    const api = new RoomcastApi({ baseUrl: p.proxyUrl, token: spec.token, ...(fetchFn ? { fetch: fetchFn } : {}) });
    const room = new RoomClient({
      api,
      roomId: spec.roomId,
      stompUrls: [wssUrl],
      webSocketFactory: factory,
      silenceResyncMs: p.silenceResyncMs,
      reconnect: { initialMs: 200, maxMs: 3000 },
    });
    const view = {
      spec,
      room,
      shownAt: {} as Record<string, number>,
      reconnects: 0,
      timeline: [[Date.now(), room.state]] as [number, string][],
      presence: [] as [number, number, string[] | null][],
    };
    room.on('presence', (p) => {
      view.presence.push([Date.now(), p.online, p.members ? p.members.map((m) => m.userId) : null]);
    });
    room.on('message', (m) => {
      view.shownAt[m.id] ??= Date.now();
    });
    room.on('state', (s) => {
      view.timeline.push([Date.now(), s]);
      if (s === 'connecting') view.reconnects++;
    });
    room.on('error', (err, fatal) => {
      if (fatal) process.stderr.write(`client ${spec.userId.slice(0, 8)}: fatal ${err.code}: ${err.message}\n`);
    });
    return view;
  });
  const startEveryMs = p.startPerSecond ? 1000 / p.startPerSecond : 0;
  entries.forEach((e, i) => (startEveryMs === 0 ? e.room.start() : setTimeout(() => e.room.start(), i * startEveryMs)));

  process.on('message', (m: { type: string; count?: number; role?: string; audience?: 'everyone' | 'instructors'; body?: Record<string, unknown>; spreadChoices?: number }) => {
    if (m.type === 'act') {
      const acting = entries.filter((e) => e.spec.role === m.role);
      // `spreadChoices`: each client answers its own choice (its place in this worker, modulo n), as a class would.
      acting.forEach((e, i) => e.room.send({ audience: m.audience ?? 'everyone', kind: 'action', body: { ...m.body, ...(m.spreadChoices ? { choices: [i % m.spreadChoices] } : {}) } }));
      reply(acting.length);
      return;
    }
    if (m.type === 'states') {
      const states: Record<string, number> = {};
      for (const e of entries) states[e.room.state] = (states[e.room.state] ?? 0) + 1;
      reply(states);
      return;
    }
    if (m.type !== 'cut') return;
    const sockets = [...live];
    for (let i = 0; i < (m.count ?? 1) && sockets.length > 0; i++) {
      const victim = sockets.splice(Math.floor(Math.random() * sockets.length), 1)[0];
      victim?.terminate();
      cuts++;
    }
    reply(cuts);
  });
  ready();
  await stopped;
  const views = entries.map(
    (e): ChaosClientView => ({
      userId: e.spec.userId,
      roomId: e.spec.roomId,
      role: e.spec.role,
      ids: e.room.messages.map((m) => m.id),
      shownAt: e.shownAt,
      reconnects: e.reconnects,
      finalState: e.room.state,
      timeline: e.timeline,
      presence: e.presence,
    }),
  );
  await Promise.all(entries.map((e) => e.room.stop()));
  return { views, cuts };
});
