/** CPU time and memory of processes of this machine, read from /proc (Linux). */
import { readdirSync, readFileSync } from 'node:fs';

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

/** `pid` and every process below it: Postgres does its work in the postmaster's children. */
function processTree(roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const ppid = sampleProc(pid)?.ppid;
    if (ppid !== undefined) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const out: number[] = [];
  const walk = (pid: number): void => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  roots.forEach(walk);
  return out;
}

/**
 * CPU seconds used between construction and `read()` by a set of processes and all their
 * descendants (a child born meanwhile counts in full; one that exits meanwhile is missed, which
 * the benchmark's long-lived connection pools make rare), and the roots' total RSS at the end.
 */
export class ProcMeter {
  private start = new Map<number, number>();
  constructor(private readonly pids: number[]) {
    for (const pid of processTree(pids)) this.start.set(pid, sampleProc(pid)?.cpuSeconds ?? 0);
  }
  read(): { cpuSeconds: number; rssBytes: number } {
    let cpu = 0;
    for (const pid of processTree(this.pids)) {
      const s = sampleProc(pid);
      if (s) cpu += s.cpuSeconds - (this.start.get(pid) ?? 0);
    }
    const rss = this.pids.reduce((n, pid) => n + (sampleProc(pid)?.rssBytes ?? 0), 0);
    return { cpuSeconds: cpu, rssBytes: rss };
  }
}
