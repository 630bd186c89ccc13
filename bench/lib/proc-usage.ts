/** CPU time and memory of processes of this machine, read from /proc (Linux). */
import { readdirSync, readFileSync } from 'node:fs';
import { round } from '../../testkit/stats';

const CLK_TCK = 100;

export interface ProcSample {
  /** user + system CPU seconds so far (its own: a reaped child's lifetime CPU would be counted at once) */
  cpuSeconds: number;
  rssBytes: number;
  ppid: number;
}

export function sampleProc(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state (field 3): ppid is field 4, utime/stime 14/15, rss (pages) 24.
    const cpuTicks = Number(fields[11]) + Number(fields[12]);
    return { cpuSeconds: cpuTicks / CLK_TCK, rssBytes: Number(fields[21]) * 4096, ppid: Number(fields[1]) };
  } catch {
    return null;
  }
}

/** Every process of the machine, sampled once. */
function sampleAll(): Map<number, ProcSample> {
  const all = new Map<number, ProcSample>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    const s = Number.isInteger(pid) ? sampleProc(pid) : null;
    if (s) all.set(pid, s);
  }
  return all;
}

/** `root` and every process below it: Postgres does its work in the postmaster's children. */
function processTree(root: number, all: Map<number, ProcSample>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, s] of all) {
    const siblings = children.get(s.ppid);
    if (siblings) siblings.push(pid);
    else children.set(s.ppid, [pid]);
  }
  const out: number[] = [];
  const walk = (pid: number): void => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** CPU seconds `pids` used between two samples; a process born in between counts in full. */
function treeCpuSeconds(pids: number[], now: Map<number, ProcSample>, before: Map<number, ProcSample>): number {
  return pids.reduce((sum, pid) => sum + (now.get(pid)?.cpuSeconds ?? 0) - (before.get(pid)?.cpuSeconds ?? 0), 0);
}

/**
 * CPU seconds used between construction and `read()` by processes and all their descendants
 * (a child born meanwhile counts in full; one that exits meanwhile is missed, which the
 * benchmark's long-lived connection pools make rare), and the roots' RSS at the end. Give the
 * processes names to get each one's share too.
 */
export class ProcMeter {
  private readonly start = sampleAll();
  private readonly roots: [string, number][];

  constructor(pids: number[] | Record<string, number>) {
    this.roots = Array.isArray(pids) ? pids.map((pid) => [String(pid), pid]) : Object.entries(pids);
  }

  read(): { cpuSeconds: number; rssBytes: number; cpuSecondsByName: Record<string, number> } {
    const now = sampleAll();
    const cpuSecondsByName: Record<string, number> = {};
    let cpuSeconds = 0;
    let rssBytes = 0;
    for (const [name, root] of this.roots) {
      const cpu = treeCpuSeconds(processTree(root, now), now, this.start);
      cpuSecondsByName[name] = cpu;
      cpuSeconds += cpu;
      rssBytes += now.get(root)?.rssBytes ?? 0;
    }
    return { cpuSeconds, rssBytes, cpuSecondsByName };
  }
}

/** CPU seconds spent over `elapsedS` as a percentage of one core (100 = one core), one decimal. */
export const cpuPercent = (cpuSeconds: number, elapsedS: number): number => round((cpuSeconds / elapsedS) * 100, 1);

/** A ProcMeter reading's per-name CPU as percentages of one core. */
export const cpuPercentByName = (byName: Record<string, number>, elapsedS: number): Record<string, number> =>
  Object.fromEntries(Object.entries(byName).map(([name, cpu]) => [name, cpuPercent(cpu, elapsedS)]));

export interface Peak {
  /** The highest CPU of the process and its children over one sampling interval, % of one core. */
  cpuPercent: number;
  /** The highest RSS of the process and its children, MiB. */
  rssMiB: number;
}

/**
 * Samples named processes (with their children) every `everyMs` until `stop()`: the peaks a
 * short storm reaches, which an average over the whole run hides.
 */
export class PeakMeter {
  private previous = sampleAll();
  private previousAt = Date.now();
  private readonly peaks: Record<string, Peak> = {};
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: Record<string, number>,
    everyMs = 500,
  ) {
    for (const name of Object.keys(pids)) this.peaks[name] = { cpuPercent: 0, rssMiB: 0 };
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  stop(): Record<string, Peak> {
    clearInterval(this.timer);
    this.sample();
    return this.peaks;
  }

  private sample(): void {
    const now = sampleAll();
    const seconds = (Date.now() - this.previousAt) / 1000;
    for (const [name, root] of Object.entries(this.pids)) {
      const tree = processTree(root, now);
      const cpu = treeCpuSeconds(tree, now, this.previous);
      const rss = tree.reduce((sum, pid) => sum + (now.get(pid)?.rssBytes ?? 0), 0);
      const peak = this.peaks[name] as Peak;
      if (seconds > 0) peak.cpuPercent = Math.max(peak.cpuPercent, cpuPercent(cpu, seconds));
      peak.rssMiB = Math.max(peak.rssMiB, round(rss / 2 ** 20, 0));
    }
    this.previous = now;
    this.previousAt = Date.now();
  }
}
