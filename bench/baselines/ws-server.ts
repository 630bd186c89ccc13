/**
 * Baseline (c): the floor on this machine. A bare `ws` server that broadcasts each POSTed
 * message to the sockets of its room: no persistence, no broker, no authorization.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { workerMain } from '../../testkit/workers';
import { roomPostHandler } from './post-route';

workerMain<Record<string, never>, { broadcast: number }>(async (_p, stopped, ready) => {
  const rooms = new Map<string, Set<WebSocket>>();
  let broadcast = 0;
  const server = http.createServer(
    roomPostHandler((room, body, res) => {
      const id = randomUUID();
      const frame = JSON.stringify({ id, ...body });
      for (const ws of rooms.get(room) ?? []) ws.send(frame);
      broadcast++;
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id }));
    }),
  );
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    const room = new URL(req.url ?? '/', 'http://x').searchParams.get('room') ?? '';
    const members = rooms.get(room) ?? new Set<WebSocket>();
    rooms.set(room, members);
    members.add(ws);
    ws.on('close', () => members.delete(ws));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  ready((server.address() as AddressInfo).port);
  await stopped;
  for (const ws of wss.clients) ws.terminate();
  await new Promise<void>((r) => server.close(() => r()));
  return { broadcast };
});
