/** Cheap readiness probes shared by the services. */
import net from 'node:net';
import { runCommand } from './processes';

/** One line of `servicesStatus`: a service (or RabbitMQ node), whether it answers, and where. */
export interface ServiceStatus {
  name: string;
  up: boolean;
  endpoint: string;
  pid: number | null;
}

/** Whether something accepts TCP connections on host:port within `timeoutMs`. */
export function isPortOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The HTTP status of a GET, or null when nothing answered in time. */
export async function httpStatus(url: string, timeoutMs = 1000): Promise<number | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return null;
  }
}

/** Another process listens on a port we are about to bind. */
export class PortTakenError extends Error {
  override name = 'PortTakenError';
  readonly code = 'port_taken';
}

/**
 * Throws when `port` already accepts connections although our own process for it is not
 * running (e.g. roomcast started from another checkout or data dir). The message names the
 * holder and the setting that moves the port, since a start attempt would only fail later.
 */
export async function assertPortFree(host: string, port: number, service: string, setting: string): Promise<void> {
  if (!(await isPortOpen(host, port))) return;
  const res = await runCommand('ss', ['-Hltnp', `sport = :${port}`]).catch(() => null);
  const holder = /users:\(\("([^"]+)",pid=(\d+)/.exec(res?.stdout ?? '');
  const who = holder ? `${holder[1]} (pid ${holder[2]})` : 'another process';
  throw new PortTakenError(`${service} cannot start: port ${port} is taken by ${who}, which is not ours (another checkout or data dir?); stop it or set ${setting}`);
}
