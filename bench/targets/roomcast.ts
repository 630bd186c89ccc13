/**
 * roomcast as a benchmark target: browsers' STOMP over WSS through the proxy (the product), or
 * straight to the Web-STOMP listeners and app servers (baseline (a): the proxy's cost).
 * The system runs as `npm start` runs it: app server processes, the proxy, the broker cluster.
 */
import type { Config, RabbitNode } from '../../runtime/config';
import { exchangeDestination, roomAllKey } from '../../shared/protocol/routing';
import type { Services } from '../../server/src/services';
import { dropBenchQueues, makeBenchRooms, type BenchRoom } from '../../testkit/roomcast-fixtures';
import type { PreparedRooms, Target } from '../lib/target';
import type { ClientSpec } from '../workers/subscribers';

export interface RoomcastSystem {
  config: Config;
  /** https://… of the proxy's public port */
  proxyUrl: string;
  /** PEM of the certificate the proxy serves (self-signed in development). */
  ca: string;
  appUrls: string[];
  /** name → pid of every process of the system (app servers, proxy, broker nodes, broker-auth, ...). */
  pids: Record<string, number>;
}

export function roomcastTarget(services: Services, sys: RoomcastSystem, via: 'proxy' | 'direct'): Target & { memoryPids(): Record<string, number> } {
  const nodes = sys.config.rabbitmq.nodes;
  const wsUrl = (i: number): string =>
    via === 'proxy' ? `${sys.proxyUrl.replace(/^https/, 'wss')}/ws` : (nodes[i % nodes.length] as RabbitNode).webStompUrl;
  let made: BenchRoom[] = [];
  const postBase = (i: number): string => (via === 'proxy' ? sys.proxyUrl : (sys.appUrls[i % sys.appUrls.length] as string));
  return {
    name: via === 'proxy' ? 'roomcast (wss via proxy)' : 'roomcast (direct, no proxy)',
    namedPids: () => sys.pids,
    memoryPids: () =>
      Object.fromEntries(Object.entries(sys.pids).filter(([name]) => name.startsWith('rabbitmq') || (via === 'proxy' && name === 'proxy'))),
    async prepare(rooms, perRoom): Promise<PreparedRooms> {
      const fresh = await makeBenchRooms(services, rooms, perRoom);
      made = [...made, ...fresh];
      let n = 0;
      const clients: ClientSpec[] = fresh.flatMap((room) =>
        room.learners.map((l) => ({
          kind: 'stomp' as const,
          url: wsUrl(n++),
          login: l.id,
          passcode: l.passcode,
          destinations: [exchangeDestination(roomAllKey(room.id))],
          room: room.id,
        })),
      );
      return {
        clients,
        post: {
          baseUrl: postBase(0),
          ca: via === 'proxy' ? sys.ca : undefined,
          format: 'roomcast',
          targets: fresh.map((room, i) => ({
            baseUrl: postBase(i),
            room: room.id,
            path: `/api/rooms/${room.id}/messages`,
            headers: { authorization: `Bearer ${room.instructor.token}` },
          })),
        },
      };
    },
    async stop(): Promise<void> {
      const done = made;
      made = [];
      await dropBenchQueues(services, done);
    },
  };
}
