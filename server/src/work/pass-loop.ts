/**
 * Passes run one at a time, each followed by a wait it decides: the loop under every worker
 * (`Worker`) and the campaign runner. `wake` runs the next pass now instead of after its wait;
 * `stop` ends the loop and resolves once the pass under way has ended.
 */
export interface PassLoopOptions<R> {
  pass: () => Promise<R>;
  /** How long to wait after a pass that resolved to `result`. */
  after: (result: R) => number;
  /** How long to wait after a pass that threw (report it here). */
  afterError: (err: unknown) => number;
}

export class PassLoop<R> {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<R> | null = null;
  private started = false;

  constructor(private readonly o: PassLoopOptions<R>) {}

  /** Starts passing, the first pass after `firstDelayMs`. */
  start(firstDelayMs: number): void {
    this.started = true;
    this.schedule(firstDelayMs);
  }

  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  wake(): void {
    if (this.started && !this.running) this.schedule(0);
  }

  /** One pass now (or the one under way). */
  runOnce(): Promise<R> {
    this.running ??= this.o.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.runOnce()
        .then(this.o.after, this.o.afterError)
        .then((next) => {
          if (this.started && !this.timer) this.schedule(next);
        });
    }, delayMs);
  }
}
