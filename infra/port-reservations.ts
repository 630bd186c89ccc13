/**
 * Our listening ports lie inside Linux's ephemeral range (32768-60999 by default). Any
 * outgoing TCP connection on the machine (Erlang distribution, a rabbitmqctl, a test client)
 * may be given one of them as its local port, and a listener (re)starting meanwhile fails with
 * EADDRINUSE: seen here as a RabbitMQ node's management listener failing on start_app.
 * Adding the ports to net.ipv4.ip_local_reserved_ports keeps the kernel from handing them out;
 * explicit binds are unaffected. The setting is additive and lasts until reboot.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Config } from '../shared/config';
import type { Logger } from './logger';
import { isRoot } from './processes';

const RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range';
const RESERVED_FILE = '/proc/sys/net/ipv4/ip_local_reserved_ports';

/** Every port a roomcast service listens on. */
export function servicePorts(config: Config): number[] {
  const perNode = config.rabbitmq.nodes.flatMap((n) => [
    n.amqpPort,
    n.stompPort,
    n.webStompPort,
    n.prometheusPort,
    n.managementPort,
    n.distPort,
  ]);
  return [
    config.postgres.port,
    config.redis.port,
    config.brokerAuth.port,
    config.app.port,
    config.rabbitmq.epmdPort,
    ...perNode,
  ];
}

/** Parses the kernel's "a,b-c,..." port list. */
function parsePorts(text: string): Set<number> {
  const ports = new Set<number>();
  for (const part of text.trim().split(',').filter(Boolean)) {
    const [lo, hi = lo] = part.split('-').map(Number);
    if (lo === undefined || hi === undefined) continue;
    for (let p = lo; p <= hi; p++) ports.add(p);
  }
  return ports;
}

/** Formats sorted ports as the kernel's list, collapsing runs into ranges. */
function formatPorts(ports: Set<number>): string {
  const sorted = [...ports].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0) + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Reserves our ports that the kernel could hand out as ephemeral ones (root only). */
export function reserveServicePorts(config: Config, log: Logger): void {
  const [lo = 0, hi = 0] = readFileSync(RANGE_FILE, 'utf8').trim().split(/\s+/).map(Number);
  const reserved = parsePorts(readFileSync(RESERVED_FILE, 'utf8'));
  const missing = [...new Set(servicePorts(config))].filter((p) => p >= lo && p <= hi && !reserved.has(p));
  if (missing.length === 0) return;
  const wanted = formatPorts(new Set([...reserved, ...missing]));
  if (!isRoot()) {
    log.warn(
      `ports ${formatPorts(new Set(missing))} are in the ephemeral range ${lo}-${hi} and may be taken ` +
        `by outgoing connections; as root run: sysctl -w net.ipv4.ip_local_reserved_ports=${wanted}`,
    );
    return;
  }
  try {
    writeFileSync(RESERVED_FILE, wanted);
    log.info(`reserved ports ${formatPorts(new Set(missing))} (net.ipv4.ip_local_reserved_ports) so no outgoing connection takes them`);
  } catch (err) {
    log.warn(`could not reserve ports in ${RESERVED_FILE} (${(err as Error).message}); a listener may rarely hit EADDRINUSE`);
  }
}
