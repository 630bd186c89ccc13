/** CPU time and memory of processes of this machine, read from /proc (Linux). */
import { readFileSync } from 'node:fs';

const CLK_TCK = 100;

export interface ProcSample {
  /** user + system CPU seconds so far */
  cpuSeconds: number;
  rssBytes: number;
}

export function sampleProc(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state (field 3); utime/stime are fields 14/15, rss (pages) field 24.
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const rssPages = Number(fields[21]);
    return { cpuSeconds: (utime + stime) / CLK_TCK, rssBytes: rssPages * 4096 };
  } catch {
    return null;
  }
}

/** CPU seconds used between two samples of a set of pids, and their total RSS at the end. */
export class ProcMeter {
  private start = new Map<number, number>();
  constructor(private readonly pids: number[]) {
    for (const pid of pids) this.start.set(pid, sampleProc(pid)?.cpuSeconds ?? 0);
  }
  read(): { cpuSeconds: number; rssBytes: number } {
    let cpu = 0;
    let rss = 0;
    for (const pid of this.pids) {
      const s = sampleProc(pid);
      if (!s) continue;
      cpu += s.cpuSeconds - (this.start.get(pid) ?? 0);
      rss += s.rssBytes;
    }
    return { cpuSeconds: cpu, rssBytes: rss };
  }
}
