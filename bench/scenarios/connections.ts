/**
 * Connections: ramp to N connected, subscribed STOMP clients with 10 s heart-beats, hold them,
 * and measure connections per second and the memory each connection costs the broker nodes
 * and the proxy (RSS growth divided by N).
 */
import { sampleProc } from '../lib/proc-usage';
import { round } from '../../testkit/stats';
import type { Target } from '../lib/target';
import { startWorker } from '../../testkit/workers';
import type { ClientSpec, SubscribersParams, SubscribersResult } from '../workers/subscribers';

export interface ConnectionsOptions {
  connections: number;
  rooms: number;
  holdMs: number;
  clientProcesses: number;
  progress: (line: string) => void;
}

export interface ConnectionsResult {
  target: string;
  requested: number;
  connected: number;
  failed: number;
  droppedWhileHeld: number;
  /** Why connections dropped while held: reason → count. */
  dropReasons: Record<string, number>;
  connectionsPerSecond: number;
  /** Memory growth per connection of the measured processes (broker nodes + proxy), KiB. */
  kibPerConnection: number;
  perProcessKib: Record<string, number>;
  firstError?: string;
}

export async function runConnections(target: Target & { memoryPids(): Record<string, number> }, o: ConnectionsOptions): Promise<ConnectionsResult> {
  const perRoom = Math.ceil(o.connections / o.rooms);
  o.progress(`${target.name}: preparing ${o.rooms} rooms × ${perRoom} members`);
  const prepared = await target.prepare(o.rooms, perRoom);
  const clients = prepared.clients.slice(0, o.connections);
  const measured = target.memoryPids();
  const before = Object.fromEntries(Object.entries(measured).map(([name, pid]) => [name, sampleProc(pid)?.rssBytes ?? 0]));

  const shares: ClientSpec[][] = Array.from({ length: o.clientProcesses }, () => []);
  clients.forEach((c, i) => shares[i % o.clientProcesses]?.push(c));
  o.progress(`${target.name}: connecting ${clients.length} clients from ${o.clientProcesses} processes`);
  const started = Date.now();
  const workers = shares.map((share) =>
    startWorker<SubscribersParams, SubscribersResult>(new URL('../workers/subscribers.ts', import.meta.url), { clients: share, ca: prepared.post.ca, concurrency: 100, heartbeatMs: 10_000 }),
  );
  await Promise.all(workers.map((w) => w.ready));
  const rampS = (Date.now() - started) / 1000;
  o.progress(`${target.name}: ramp done in ${rampS.toFixed(1)} s; holding ${o.holdMs / 1000} s with heart-beats`);
  await new Promise((r) => setTimeout(r, o.holdMs));
  const after = Object.fromEntries(Object.entries(measured).map(([name, pid]) => [name, sampleProc(pid)?.rssBytes ?? 0]));
  const results = await Promise.all(workers.map((w) => w.stop()));

  const connected = results.reduce((n, r) => n + r.connected, 0);
  const perProcessKib: Record<string, number> = {};
  let growth = 0;
  for (const name of Object.keys(measured)) {
    const g = (after[name] ?? 0) - (before[name] ?? 0);
    growth += g;
    perProcessKib[name] = round(g / 1024 / Math.max(1, connected), 1);
  }
  const result: ConnectionsResult = {
    target: target.name,
    requested: clients.length,
    connected,
    failed: results.reduce((n, r) => n + r.failed, 0),
    droppedWhileHeld: results.reduce((n, r) => n + r.dropped, 0),
    dropReasons: results.reduce<Record<string, number>>((all, r) => {
      for (const [reason, n] of Object.entries(r.dropReasons)) all[reason] = (all[reason] ?? 0) + n;
      return all;
    }, {}),
    connectionsPerSecond: round(connected / rampS, 0),
    kibPerConnection: round(growth / 1024 / Math.max(1, connected), 1),
    perProcessKib,
    firstError: results.find((r) => r.firstError)?.firstError,
  };
  o.progress(
    `${target.name}: ${connected}/${clients.length} connected at ${result.connectionsPerSecond}/s, ${result.kibPerConnection} KiB per connection, ${result.droppedWhileHeld} dropped${result.droppedWhileHeld ? ` (${JSON.stringify(result.dropReasons)})` : ''}`,
  );
  return result;
}
