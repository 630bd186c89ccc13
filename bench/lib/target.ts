/** A system the benchmarks drive: roomcast (through the proxy or not) or one of the baselines. */
import type { PosterTarget } from '../workers/poster';
import type { ClientSpec } from '../workers/subscribers';

export interface PreparedRooms {
  /** One spec per subscriber, in room order. */
  clients: ClientSpec[];
  /** Where and how the poster sends. */
  post: { baseUrl: string; ca?: string; format: 'roomcast' | 'plain'; targets: PosterTarget[] };
}

export interface Target {
  name: string;
  /** Processes of the system under test by name (proxy, app server 1, rabbitmq roomcast-1@localhost, ...), for CPU and memory. */
  namedPids(): Record<string, number>;
  prepare(rooms: number, subscribersPerRoom: number): Promise<PreparedRooms>;
  stop(): Promise<void>;
}
