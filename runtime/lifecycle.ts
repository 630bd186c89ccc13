/**
 * How every long-running roomcast process (app server, broker-auth, proxy) starts and stops, in
 * one place so they never drift: a start-up failure is one line on stderr (the message alone for
 * errors that explain themselves, such as a bad setting; the stack otherwise) and exit 1;
 * SIGINT or SIGTERM closes the service once (a second signal while closing changes nothing),
 * then exits 0, or 1 if closing failed.
 */
import type { Logger } from 'pino';

export interface Service {
  close(): Promise<void>;
  logger?: Logger;
}

export interface RunOptions {
  /** Shown in the start-up failure line: "roomcast <name> failed to start: …". */
  name: string;
  /** Errors whose message is the whole story (no stack needed). */
  explained?: (err: unknown) => boolean;
}

export function runService(start: () => Promise<Service>, o: RunOptions): void {
  // Through a promise, so a synchronous throw (a bad setting in loadConfig) is reported like the rest.
  Promise.resolve()
    .then(start)
    .then(
    (service) => {
      let stopping = false;
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) return;
        stopping = true;
        service.logger?.info({ signal }, 'shutting down');
        service.close().then(
          () => process.exit(0),
          (err: unknown) => {
            service.logger?.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    },
    (err: unknown) => {
      const text = o.explained?.(err) ? (err as Error).message : String((err as Error)?.stack ?? err);
      process.stderr.write(`roomcast ${o.name} failed to start: ${text}\n`);
      process.exit(1);
    },
  );
}
