/** How every benchmark script reports as it goes: one line per step, stamped with the seconds since it started. */
import type { Logger } from '../../infra/index';

export interface Progress {
  say(line: string): void;
  /** The same lines, for infra's start-up steps. */
  log: Logger;
}

export function progress(): Progress {
  const t0 = Date.now();
  const say = (line: string): void => void process.stdout.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);
  return { say, log: { info: say, warn: (m) => say(`warning: ${m}`) } };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
