/**
 * Baseline (b): what a team would usually build instead. Socket.IO 4 with the Redis adapter
 * (so several servers could share rooms), each message persisted to the same PostgreSQL before
 * it is emitted to the room, as the Socket.IO documentation shows. Runs as a bench worker.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Server } from 'socket.io';
import { workerMain } from '../../testkit/workers';
import { roomPostHandler } from './post-route';

export interface SocketIoParams {
  pgUrl: string;
  redisPort: number;
}

workerMain<SocketIoParams, { emitted: number }>(async (p, stopped, ready) => {
  const pool = new pg.Pool({ connectionString: p.pgUrl, max: 10 });
  await pool.query(
    'CREATE TABLE IF NOT EXISTS bench_socketio_messages (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), room text NOT NULL, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
  );
  const pub = new Redis(p.redisPort, '127.0.0.1');
  const sub = pub.duplicate();
  let emitted = 0;

  const server = http.createServer(
    roomPostHandler((room, body, res) => {
      pool
        .query<{ id: string }>('INSERT INTO bench_socketio_messages (room, body) VALUES ($1, $2) RETURNING id', [room, body])
        .then(({ rows }) => {
          const id = rows[0]?.id as string;
          io.to(room).emit('message', { id, ...body });
          emitted++;
          res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id }));
        })
        .catch((err: Error) => res.writeHead(500).end(err.message));
    }),
  );
  const io = new Server(server, { adapter: createAdapter(pub, sub), transports: ['websocket'] });
  io.on('connection', (socket) => {
    socket.on('join', (room: string, ack: () => void) => {
      void socket.join(room);
      ack();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  ready((server.address() as AddressInfo).port);
  await stopped;
  await io.close();
  pub.disconnect();
  sub.disconnect();
  await pool.end();
  return { emitted };
});
