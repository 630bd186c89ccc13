/**
 * The default per-address connection limit, from the descriptors the process may open.
 *
 * Every WebSocket through the proxy holds two descriptors (the client's and the node's), so
 * the open-file limit allows about half as many connections. One address may take a quarter
 * of those: a big NAT (a school: hundreds of learners, a WebSocket and a few HTTP connections
 * each) fits with room to spare at the 65,536 infra asks for (8,160 per address), while a
 * single flooding address can never take the descriptors every other client needs.
 *
 * The limit is read again now and then: infra raises it with `prlimit` just after the proxy
 * starts, so the value seen at start-up is not the one that holds.
 */
import { readFileSync } from 'node:fs';

/** Descriptors kept for everything that is not a client: listeners, upstream keep-alive, logs, health checks. */
export const RESERVED_DESCRIPTORS = 256;
/** Share of the connection capacity one address may hold. */
const SHARE_PER_ADDRESS = 4;
/** When the limit cannot be read (not Linux): the usual soft default. */
const FALLBACK_OPEN_FILES = 1024;
const REREAD_MS = 5000;

/** The process's soft open-file limit, from /proc (Linux); null when unreadable or unlimited. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.match(/\d+|unlimited/)?.[0];
    return soft === undefined || soft === 'unlimited' ? null : Number(soft);
  } catch {
    return null;
  }
}

/** Connections one address may hold when `openFiles` descriptors are allowed (at least 1). */
export const perAddressLimit = (openFiles: number): number => Math.max(1, Math.floor((openFiles - RESERVED_DESCRIPTORS) / 2 / SHARE_PER_ADDRESS));

/** A fixed limit when configured, else one that follows the open-file limit (re-read every 5 s at most). */
export function connectionLimit(configured: number | null, readLimit: () => number | null = openFileLimit): () => number {
  if (configured !== null) return () => configured;
  let value = 0;
  let readAt = -Infinity;
  return () => {
    const now = Date.now();
    if (now - readAt >= REREAD_MS) {
      value = perAddressLimit(readLimit() ?? FALLBACK_OPEN_FILES);
      readAt = now;
    }
    return value;
  };
}
