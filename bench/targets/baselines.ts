/** The baselines as benchmark targets: the same rooms and posts, their own servers. */
import { randomBytes } from 'node:crypto';
import type { Config } from '../../runtime/config';
import type { PreparedRooms, Target } from '../lib/target';
import { startWorker, type WorkerHandle } from '../../testkit/workers';
import type { SocketIoParams } from '../baselines/socketio-server';
import type { SocketIoRoomcastParams } from '../baselines/socketio-roomcast-server';
import type { Services } from '../../server/src/services';
import { dropBenchQueues, makeBenchRooms, type BenchRoom } from '../../testkit/roomcast-fixtures';

function plainRooms(kind: 'socketio' | 'ws', url: string, baseUrl: string, rooms: number, perRoom: number): PreparedRooms {
  const names = Array.from({ length: rooms }, () => `r${randomBytes(4).toString('hex')}`);
  return {
    clients: names.flatMap((room) => Array.from({ length: perRoom }, () => ({ kind, url, room }))),
    post: { baseUrl, format: 'plain', targets: names.map((room) => ({ room, path: `/rooms/${room}/messages`, headers: {} })) },
  };
}

/** `backing`: the services the server uses (name → pid), measured as part of it. */
async function serverTarget(name: string, module: URL, params: unknown, kind: 'socketio' | 'ws', backing: Record<string, number> = {}): Promise<Target> {
  const server: WorkerHandle<unknown> = startWorker(module, params);
  const port = (await server.ready) as number;
  const named = { [name]: server.pid, ...backing };
  return {
    name,
    namedPids: () => named,
    prepare: async (rooms, perRoom) =>
      plainRooms(kind, kind === 'ws' ? `ws://127.0.0.1:${port}` : `http://127.0.0.1:${port}`, `http://127.0.0.1:${port}`, rooms, perRoom),
    stop: async () => {
      await server.stop();
    },
  };
}

/**
 * (b) Socket.IO 4 + Redis adapter, persisting to the same Postgres before emitting. `backing`
 * holds the pids of that Postgres and Redis: their CPU is part of this system's cost too.
 */
export const socketIoTarget = (config: Config, backing: Record<string, number>): Promise<Target> =>
  serverTarget(
    'socket.io+redis+pg',
    new URL('../baselines/socketio-server.ts', import.meta.url),
    { pgUrl: config.postgres.url, redisPort: config.redis.port } satisfies SocketIoParams,
    'socketio',
    backing,
  );

/** (c) bare ws broadcast: no persistence, no broker. */
export const wsTarget = (): Promise<Target> => serverTarget('bare ws', new URL('../baselines/ws-server.ts', import.meta.url), {}, 'ws');

/**
 * (b') Socket.IO 4 + Redis adapter doing roomcast's per-message work: roomcast's session check
 * and send path on real rooms (the instructor's session, the group commit, the outbox row), then
 * a Socket.IO emit instead of the broker. Against (b) it shows what roomcast's guarantees cost;
 * against roomcast, what its architecture (broker, proxy) costs. `backing`: Postgres and Redis.
 */
export async function socketIoRoomcastTarget(services: Services, backing: Record<string, number>): Promise<Target> {
  const name = 'socket.io+roomcast work';
  const server: WorkerHandle<unknown> = startWorker(new URL('../baselines/socketio-roomcast-server.ts', import.meta.url), {} satisfies SocketIoRoomcastParams);
  const url = `http://127.0.0.1:${(await server.ready) as number}`;
  const named = { [name]: server.pid, ...backing };
  let made: BenchRoom[] = [];
  return {
    name,
    namedPids: () => named,
    async prepare(rooms, perRoom): Promise<PreparedRooms> {
      // Socket.IO clients join by room id without a session, as in (b); only the poster logs in.
      const fresh = await makeBenchRooms(services, rooms, 0);
      made = [...made, ...fresh];
      return {
        clients: fresh.flatMap((room) => Array.from({ length: perRoom }, () => ({ kind: 'socketio' as const, url, room: room.id }))),
        post: {
          baseUrl: url,
          format: 'roomcast',
          targets: fresh.map((room) => ({ room: room.id, path: `/api/rooms/${room.id}/messages`, headers: { authorization: `Bearer ${room.instructor.token}` } })),
        },
      };
    },
    async stop(): Promise<void> {
      await server.stop();
      // makeBenchRooms declared each room's instructor queue, though nothing is published to it here.
      await dropBenchQueues(services, made);
      made = [];
    },
  };
}
