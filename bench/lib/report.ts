/**
 * The benchmark's report: each figure against the issue's targets and the baselines, as
 * markdown next to the JSON of the same run.
 */
import type { ConnectionsResult } from '../scenarios/connections';
import type { FanoutResult } from '../scenarios/fanout';
import type { IngestResult } from '../scenarios/ingest';
import type { RecoveryResult } from '../scenarios/recovery';
import type { SaturationResult } from '../scenarios/saturation';

export interface Results {
  machine: Record<string, string | number>;
  startedAt: string;
  /** Wall time of the whole run, seconds. */
  durationSeconds?: number;
  /** Whether --quick sizes were used: the targets are stated for the full sizes. */
  quick: boolean;
  fanout?: FanoutResult[];
  throughput?: FanoutResult[];
  saturation?: SaturationResult[];
  ingest?: IngestResult[];
  connections?: ConnectionsResult;
  proxy?: FanoutResult[];
  recovery?: RecoveryResult;
}

const ratio = (a: number, b: number | undefined): string => (b ? `${(a / b).toFixed(2)}×` : '–');

/** The run as markdown: the targets first, then a table per scenario. */
export function markdown(r: Results): string {
  const out: string[] = [
    `# roomcast benchmark, ${r.startedAt}`,
    '',
    `Machine: ${Object.entries(r.machine).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    ...(r.durationSeconds === undefined ? [] : ['', `Run time: ${r.durationSeconds} s${r.quick ? ' (--quick)' : ''}`]),
    '',
    ...targetsSection(r),
  ];
  const fanTable = (title: string, rows: FanoutResult[]): void => {
    const base = (name: string): FanoutResult | undefined => rows.find((x) => x.target.startsWith(name));
    const sio = base('socket.io');
    const ws = base('bare ws');
    out.push(`## ${title}`, '', '| target | subscribers | msg/s | deliveries/s | ×socket.io | ×bare ws | p50 ms | p95 ms | p99 ms | max ms | lost | dup | SUT CPU % | load-gen CPU % |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const x of rows) {
      out.push(
        `| ${x.target} | ${x.subscribers} | ${x.ratePerSecond} | ${x.deliveriesPerSecond} | ${ratio(x.deliveriesPerSecond, sio?.deliveriesPerSecond)} | ${ratio(x.deliveriesPerSecond, ws?.deliveriesPerSecond)} | ${x.latencyMs.p50} | ${x.latencyMs.p95} | ${x.latencyMs.p99} | ${x.latencyMs.max} | ${x.lost} | ${x.duplicates} | ${x.sutCpuPercent} | ${x.loadGenCpuPercent} |`,
      );
    }
    out.push('');
  };
  if (r.proxy) {
    const [p, d] = r.proxy;
    if (p && d) {
      out.push(
        '## The proxy’s cost (same load through the proxy and direct)',
        '',
        '| | deliveries/s | p50 ms | p99 ms | proxy CPU % |',
        '|---|---|---|---|---|',
        `| direct | ${d.deliveriesPerSecond} | ${d.latencyMs.p50} | ${d.latencyMs.p99} | – |`,
        `| via proxy | ${p.deliveriesPerSecond} | ${p.latencyMs.p50} | ${p.latencyMs.p99} | ${p.cpuPercentByProcess.proxy ?? '?'} |`,
        `| proxy / direct | ${(p.deliveriesPerSecond / d.deliveriesPerSecond).toFixed(3)}× | +${(p.latencyMs.p50 - d.latencyMs.p50).toFixed(2)} | +${(p.latencyMs.p99 - d.latencyMs.p99).toFixed(2)} | target: ≥ 0.9× throughput, ≤ +2 ms p99 |`,
        '',
      );
    }
  }
  if (r.fanout) fanTable('Fan-out latency (one room)', r.fanout);
  if (r.throughput) fanTable('Fan-out throughput (10 rooms)', r.throughput);
  if (r.saturation) {
    const base = (name: string): SaturationResult | undefined => r.saturation?.find((x) => x.target.startsWith(name));
    const sio = base('socket.io');
    const ws = base('bare ws');
    out.push(
      `## Saturation (p99 ≤ ${r.saturation[0]?.p99LimitMs ?? 100} ms, nothing lost, keeping up)`,
      '',
      '| target | subscribers | sustained deliveries/s | ×socket.io | ×bare ws | steps (msg/s: p99 ms) |',
      '|---|---|---|---|---|---|',
    );
    for (const x of r.saturation) {
      const steps = x.points.map((p) => `${p.ratePerSecond}: ${p.p99Ms}${p.ok ? '' : ' ✗'}`).join(', ');
      const sustained = `${x.sustainedDeliveriesPerSecond}${x.reachedMaxRate ? ' (every rate passed)' : ''}`;
      out.push(`| ${x.target} | ${x.subscribers} | ${sustained} | ${ratio(x.sustainedDeliveriesPerSecond, sio?.sustainedDeliveriesPerSecond)} | ${ratio(x.sustainedDeliveriesPerSecond, ws?.sustainedDeliveriesPerSecond)} | ${steps} |`);
    }
    out.push('');
  }
  if (r.ingest) {
    const sio = r.ingest.find((x) => x.target.startsWith('socket.io'));
    out.push('## Ingest', '', '| target | offered/s | persisted/s | ×socket.io | POST p50 ms | POST p99 ms | errors | SUT CPU % | load-gen CPU % |', '|---|---|---|---|---|---|---|---|---|');
    for (const x of r.ingest) {
      out.push(`| ${x.target} | ${x.offeredPerSecond} | ${x.acceptedPerSecond} | ${ratio(x.acceptedPerSecond, sio?.acceptedPerSecond)} | ${x.postLatencyMs.p50} | ${x.postLatencyMs.p99} | ${x.errors} | ${x.sutCpuPercent} | ${x.loadGenCpuPercent} |`);
    }
    out.push('');
  }
  if (r.connections) {
    const c = r.connections;
    out.push('## Connections', '', `${c.connected}/${c.requested} STOMP clients over WSS through the proxy (heart-beats 10 s), ${c.connectionsPerSecond} connections/s, ${c.droppedWhileHeld} dropped while held, ${c.kibPerConnection} KiB per connection across ${Object.keys(c.perProcessKib).join(', ')} (${Object.entries(c.perProcessKib).map(([k, v]) => `${k} ${v}`).join(', ')})${c.firstError ? `; first error: ${c.firstError}` : ''}`, '');
  }
  if (r.recovery) {
    const x = r.recovery;
    const n = x.nodeLoss;
    const peaks = Object.entries(n.peaks)
      .map(([name, p]) => `| ${name} | ${p.cpuPercent} | ${p.rssMiB} |`)
      .join('\n');
    out.push(
      '## Recovery',
      '',
      `Resync: ${x.resync.clients} clients caught up on ${x.resync.messagesEach} messages each in ${x.resync.seconds} s (${x.resync.messagesPerSecond} messages/s).`,
      '',
      `Node loss: ${n.clients} clients (the web page's client library, through the proxy) all live ${n.rampSeconds} s after starting; broker node ${n.node} killed with -9. ` +
        `It dropped ${n.dropped}; ${n.recovered} were live again (reconnected, subscribed, resynced) after p50 ${n.liveAgainSeconds.p50} s, p99 ${n.liveAgainSeconds.p99} s, max ${n.liveAgainSeconds.max} s; ` +
        `all ${n.clients} live after ${n.allLiveAgainSeconds ?? 'never (120 s)'} s. Postgres client connections peaked at ${n.postgresConnectionsPeak}. ` +
        (n.died.length > 0 ? `**Gone after the storm: ${n.died.join(', ')}.**` : 'Every process of the system survived the storm.'),
      '',
      '| process | peak CPU % (one core = 100, 0.5 s) | peak RSS MiB |',
      '|---|---|---|',
      peaks,
      '',
    );
  }
  return `${out.join('\n')}\n`;
}

const VIA_PROXY = 'roomcast (wss via proxy)';

/**
 * The targets for this 2-core machine (issue 6), each with this run's figure and whether it is
 * met. A quick run uses smaller loads than the targets are stated for, and says so.
 */
function targetsSection(r: Results): string[] {
  const rows: string[] = [];
  const row = (target: string, measured: string, met: boolean): void => void rows.push(`| ${target} | ${measured} | ${met ? 'yes' : '**no**'} |`);
  const ours = <T extends { target: string }>(list: T[] | undefined): T | undefined => list?.find((x) => x.target === VIA_PROXY);
  const named = <T extends { target: string }>(list: T[] | undefined, prefix: string): T | undefined => list?.find((x) => x.target.startsWith(prefix));
  const fan = ours(r.fanout);
  if (fan) {
    row(
      `room of ${fan.subscribers} subscribers at ${fan.ratePerSecond} msg/s: p99 POST→receive ≤ 30 ms, zero loss`,
      `p99 ${fan.latencyMs.p99} ms, ${fan.lost} lost`,
      fan.latencyMs.p99 <= 30 && fan.lost === 0,
    );
  }
  const thr = ours(r.throughput);
  const sio = named(r.throughput, 'socket.io');
  const ws = named(r.throughput, 'bare ws');
  if (thr && sio && ws) {
    const a = thr.deliveriesPerSecond / sio.deliveriesPerSecond;
    const b = thr.deliveriesPerSecond / ws.deliveriesPerSecond;
    row('fan-out throughput ≥ 1.0× Socket.IO and ≥ 0.5× bare ws', `${a.toFixed(2)}× and ${b.toFixed(2)}×`, a >= 1 && b >= 0.5);
  }
  const c = r.connections;
  if (c) {
    row(
      '≥ 10,000 concurrent WSS subscribers held, ≤ 150 KiB per connection (broker + proxy)',
      `${c.connected - c.droppedWhileHeld} of ${c.requested} held, ${c.kibPerConnection} KiB`,
      c.connected - c.droppedWhileHeld >= 10_000 && c.kibPerConnection <= 150,
    );
  }
  const ing = ours(r.ingest);
  if (ing) {
    row(
      'ingest ≥ 2,000 persisted msg/s, POST p99 ≤ 50 ms',
      `${ing.acceptedPerSecond}/s, p99 ${ing.postLatencyMs.p99} ms`,
      ing.acceptedPerSecond >= 2000 && ing.postLatencyMs.p99 <= 50,
    );
  }
  const loss = r.recovery?.nodeLoss;
  if (loss) {
    row(
      '10,000 live clients, kill -9 a broker node: every client live and resynced, p99 ≤ 5 s; broker-auth and Postgres survive',
      `${loss.recovered} of ${loss.dropped} dropped (of ${loss.clients}) live again, p99 ${loss.liveAgainSeconds.p99} s; ${loss.died.length === 0 ? 'nothing died' : `died: ${loss.died.join(', ')}`}`,
      loss.clients >= 10_000 && loss.recovered === loss.dropped && loss.liveAgainSeconds.p99 <= 5 && loss.died.length === 0,
    );
  }
  if (rows.length === 0) return [];
  return [
    '## Targets',
    '',
    ...(r.quick ? ['A --quick run: smaller loads than the targets are stated for.', ''] : []),
    '| target | this run | met? |',
    '|---|---|---|',
    ...rows,
    '',
  ];
}
