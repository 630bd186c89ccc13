import { randomUUID } from 'node:crypto';

/** The same rule the app server applies, so an id the proxy keeps is one the server keeps too. */
const WELL_FORMED = /^[\w-]{1,64}$/;

/** Keeps a well-formed incoming `X-Request-Id` (a caller tracing its own calls); else a new one. */
export function requestId(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && WELL_FORMED.test(incoming) ? incoming : randomUUID();
}
