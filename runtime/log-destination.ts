/**
 * Where every roomcast process writes its JSON log lines: standard output, buffered. pino's
 * default writes each line with its own system call, one per request in the app servers and the
 * proxy (a few percent of their CPU under load, issue 17). Lines now leave in writes of up to
 * 4 KiB, and at the latest FLUSH_MS after they were logged so a quiet process's log stays
 * current. pino writes what is buffered when the process exits, a crash included; only a
 * kill -9 loses the lines of the last FLUSH_MS.
 */
import { pino, type DestinationStream } from 'pino';

const BUFFER_BYTES = 4096;
const FLUSH_MS = 250;

let shared: ReturnType<typeof pino.destination> | null = null;

/** The process's one buffered standard-output destination, made on first use. */
export function logDestination(): DestinationStream {
  if (shared === null) {
    const destination = pino.destination({ dest: 1, sync: false, minLength: BUFFER_BYTES });
    setInterval(() => destination.flush(), FLUSH_MS).unref();
    shared = destination;
  }
  return shared;
}
