/**
 * roomcast as a benchmark target: browsers' STOMP over WSS through the proxy (the product),
 * through HAProxy (a stock load balancer on the same traffic: the reference for the proxy's own
 * cost), or straight to the Web-STOMP listeners and app servers (baseline (a): no front end).
 * The system runs as `npm start` runs it: app server processes, the proxy, the broker cluster.
 * Each learner subscribes as the web client does: the room's key and its own.
 */
import type { Config, RabbitNode } from '../../runtime/config';
import { exchangeDestination, roomAllKey, roomUserKey } from '../../shared/protocol/routing';
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

/** A TLS front end the clients go through: its public https URL and its process. */
export interface FrontEnd {
  /** Short name in the target's name: proxy, HAProxy. */
  label: string;
  url: string;
  /** The front end's process, by the name it has in `pids`. */
  pidName: string;
  pid: number;
}

/** `front` null: straight to Web-STOMP and the app servers. */
export function roomcastTarget(services: Services, sys: RoomcastSystem, front: FrontEnd | null): Target & { memoryPids(): Record<string, number> } {
  const nodes = sys.config.rabbitmq.nodes;
  const wsUrl = (i: number): string => (front ? `${front.url.replace(/^https/, 'wss')}/ws` : (nodes[i % nodes.length] as RabbitNode).webStompUrl);
  let made: BenchRoom[] = [];
  const postBase = (i: number): string => front?.url ?? (sys.appUrls[i % sys.appUrls.length] as string);
  // The system's own proxy is in sys.pids whether or not this target goes through it.
  const pids = front ? { ...sys.pids, [front.pidName]: front.pid } : sys.pids;
  return {
    name: front ? `roomcast (wss via ${front.label})` : 'roomcast (direct, no proxy)',
    namedPids: () => pids,
    memoryPids: () => Object.fromEntries(Object.entries(pids).filter(([name]) => name.startsWith('rabbitmq') || name === front?.pidName)),
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
          destinations: [exchangeDestination(roomAllKey(room.id)), exchangeDestination(roomUserKey(room.id, l.id))],
          room: room.id,
        })),
      );
      return {
        clients,
        post: {
          baseUrl: postBase(0),
          ca: front ? sys.ca : undefined,
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
