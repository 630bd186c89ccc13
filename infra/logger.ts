/** The one output channel of infra modules: the CLI prints it, tests may silence it. */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

/** For callers (tests) that only want the side effects. */
export const silentLogger: Logger = { info: () => {}, warn: () => {} };
