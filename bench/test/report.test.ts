import { describe, expect, it } from 'vitest';
import { markdown, type Results } from '../lib/report';
import type { FanoutResult } from '../scenarios/fanout';
import type { IngestResult } from '../scenarios/ingest';
import type { RecoveryResult } from '../scenarios/recovery';

const latency = (p99: number) => ({ count: 1, p50: p99 / 2, p95: p99, p99, max: p99, mean: p99 / 2 });

function fanout(target: string, deliveriesPerSecond: number, p99: number, lost = 0): FanoutResult {
  return {
    target, rooms: 1, subscribers: 500, ratePerSecond: 10, posted: 200, postErrors: 0, expectedDeliveries: 100_000, deliveries: 100_000 - lost,
    lost, duplicates: 0, deliveriesPerSecond, latencyMs: latency(p99), latencyCdf: [], postLatencyMs: latency(5), sutCpuPercent: 50, cpuPercentByProcess: {},
    sutRssMiB: 100, loadGenCpuPercent: 10, connectFailures: 0,
  };
}

function ingest(target: string, acceptedPerSecond: number, p99: number): IngestResult {
  return {
    target, offeredPerSecond: 2500, acceptedPerSecond, accepted: acceptedPerSecond * 10, errors: 0, postLatencyMs: latency(p99),
    sutCpuPercent: 150, cpuPercentByProcess: {}, loadGenCpuPercent: 10,
  };
}

const run = (over: Partial<Results>): Results => ({ machine: { cpus: 2 }, startedAt: '2026-11-24T00:00:00Z', quick: false, ...over });
const targetRow = (md: string, startsWith: string): string | undefined => md.split('\n').find((l) => l.startsWith(`| ${startsWith}`));

describe('benchmark report', () => {
  it('states each target with the run through the proxy and whether it is met', () => {
    const md = markdown(
      run({
        fanout: [fanout('roomcast (direct, no proxy)', 5000, 20), fanout('roomcast (wss via proxy)', 5000, 29)],
        throughput: [fanout('roomcast (wss via proxy)', 7900, 500), fanout('socket.io+redis+pg', 8000, 60), fanout('bare ws', 8300, 5)],
        ingest: [ingest('roomcast (wss via proxy)', 2100, 51)],
        connections: { target: 'roomcast (wss via proxy)', requested: 10_000, connected: 10_000, failed: 0, droppedWhileHeld: 0, dropReasons: {}, connectionsPerSecond: 80, kibPerConnection: 149, perProcessKib: {} },
      }),
    );
    expect(targetRow(md, 'room of 500')).toBe('| room of 500 subscribers at 10 msg/s: p99 POST→receive ≤ 30 ms, zero loss | p99 29 ms, 0 lost | yes |');
    expect(targetRow(md, 'fan-out throughput')).toBe('| fan-out throughput ≥ 1.0× Socket.IO and ≥ 0.5× bare ws | 0.99× and 0.95× | **no** |');
    expect(targetRow(md, '≥ 10,000')).toContain('| 10000 of 10000 held, 149 KiB | yes |');
    expect(targetRow(md, 'ingest')).toBe('| ingest ≥ 2,000 persisted msg/s, POST p99 ≤ 50 ms | 2100/s, p99 51 ms | **no** |');
  });

  it('counts lost messages and dropped connections against their targets, and marks a quick run', () => {
    const md = markdown(
      run({
        quick: true,
        fanout: [fanout('roomcast (wss via proxy)', 5000, 10, 1)],
        connections: { target: 'roomcast (wss via proxy)', requested: 10_000, connected: 10_000, failed: 0, droppedWhileHeld: 3, dropReasons: {}, connectionsPerSecond: 80, kibPerConnection: 100, perProcessKib: {} },
      }),
    );
    expect(targetRow(md, 'room of 500')).toContain('| p99 10 ms, 1 lost | **no** |');
    expect(targetRow(md, '≥ 10,000')).toContain('| 9997 of 10000 held, 100 KiB | **no** |');
    expect(md).toContain('A --quick run: smaller loads than the targets are stated for.');
  });

  it('judges recovery by every dropped client back within 5 s at p99 and nothing of the system gone', () => {
    const loss = (over: Partial<RecoveryResult['nodeLoss']>): Results['recovery'] => ({
      resync: { clients: 100, messagesEach: 1000, seconds: 1, messagesPerSecond: 100_000 },
      nodeLoss: {
        clients: 10_000, node: 1, rampSeconds: 200, dropped: 3300, recovered: 3300, liveAgainSeconds: latency(4.2), allLiveAgainSeconds: 6,
        peaks: { 'broker-auth': { cpuPercent: 80, rssMiB: 120 } }, postgresConnectionsPeak: 40, died: [], ...over,
      },
    });
    const row = (over: Partial<RecoveryResult['nodeLoss']>): string | undefined => targetRow(markdown(run({ recovery: loss(over) })), '10,000 live clients');
    expect(row({})).toBe('| 10,000 live clients, kill -9 a broker node: every client live and resynced, p99 ≤ 5 s; broker-auth and Postgres survive | 3300 of 3300 dropped (of 10000) live again, p99 4.2 s; nothing died | yes |');
    expect(row({ recovered: 3299 })).toContain('| **no** |');
    expect(row({ liveAgainSeconds: latency(5.1) })).toContain('| **no** |');
    expect(row({ died: ['broker-auth'] })).toContain('died: broker-auth | **no** |');
    expect(row({ clients: 9800 })).toContain('| **no** |');
    expect(markdown(run({ recovery: loss({ died: ['postgres'] }) }))).toContain('**Gone after the storm: postgres.**');
  });

  it('leaves the targets out when no scenario with a target ran', () => {
    expect(markdown(run({}))).not.toContain('## Targets');
  });
});
