/**
 * The local mail server's queue length, one of the load gate's signals: the configured command
 * (ROOMCAST_MAIL_QUEUE_COMMAND, e.g. `exim4 -bpc`) run without a shell, its output one number.
 * A command that fails or prints something else leaves the gate to its other signals (logged
 * once per change, not per batch); with no command there is no local MTA to ask.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../logger';

/** A reading this fresh is reused: several batches a second need not each start a process. */
const FRESH_MS = 250;
const TIMEOUT_MS = 5000;

export class MtaQueue {
  private last: { at: number; length: number | null } | null = null;
  private failing: string | null = null;

  constructor(
    private readonly command: readonly string[] | null,
    private readonly logger: Logger,
  ) {}

  /** Messages in the MTA's queue now; null when there is no command or it failed. */
  async length(): Promise<number | null> {
    if (this.command === null) return null;
    if (this.last !== null && Date.now() - this.last.at < FRESH_MS) return this.last.length;
    const length = await this.read(this.command);
    this.last = { at: Date.now(), length };
    return length;
  }

  private read([file, ...args]: readonly string[]): Promise<number | null> {
    return new Promise((resolve) => {
      execFile(file as string, args, { timeout: TIMEOUT_MS, maxBuffer: 64 * 1024 }, (err, stdout) => {
        const count = Number.parseInt(String(stdout).trim(), 10);
        const problem = err ? err.message : /^\d+$/.test(String(stdout).trim()) ? null : `printed ${JSON.stringify(String(stdout).trim().slice(0, 80))}, not a count`;
        if (problem !== this.failing) {
          if (problem === null) this.logger.info({ command: this.command }, 'the mail queue command works again');
          else this.logger.warn({ command: this.command, problem }, 'the mail queue command failed; the load gate goes by the SMTP answers alone');
          this.failing = problem;
        }
        resolve(problem === null ? count : null);
      });
    });
  }
}
