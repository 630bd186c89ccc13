/** Cheap readiness probes shared by the services. */
import net from 'node:net';

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
