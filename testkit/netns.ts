/**
 * Separate hosts on one machine: each a Linux network namespace with its own loopback, ports
 * and address, joined by a veth pair to a bridge that is connected to nothing else. Addresses
 * come from 198.18.0.0/24 (198.18.0.0/15 is reserved for network benchmarks); the namespaces
 * get no default route, so nothing they send can leave the bridge. The bridge itself holds
 * 198.18.0.1: the test's own vantage point, like a client on that network.
 *
 * A partition is the host's link taken down (`cut`), a crash is SIGKILL to every process in
 * the namespace (`killAll`). Needs root (CAP_NET_ADMIN) and iproute2's `ip`.
 */
import { spawn, spawnSync } from 'node:child_process';

/** Everything this module makes is named with this prefix, so leftovers are found and removed. */
const PREFIX = 'rc-mh';
const BRIDGE = `${PREFIX}-br`;
const SUBNET = '198.18.0';
export const VANTAGE_ADDRESS = `${SUBNET}.1`;

export interface LabHost {
  name: string;
  /** The namespace: `rc-mh-<name>`. */
  ns: string;
  address: string;
  /** The veth end on the bridge (outside the namespace): down is a partition. */
  link: string;
}

/** Why namespaces cannot be made here, or null when they can. */
export function labUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root (CAP_NET_ADMIN); run it as root, as CI does';
  const ip = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (ip.error) return "iproute2's `ip` is not installed (apt-get install -y iproute2)";
  if (ip.status !== 0) return `\`ip netns list\` failed: ${ip.stderr.trim()}`;
  return null;
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr || r.stdout).trim()}`);
}

/** `ip` for cleaning up: what is already gone is no error. */
const ipQuiet = (...args: string[]): void => void spawnSync('ip', args, { encoding: 'utf8' });

/** Pids of every process in the namespace. */
function pidsOf(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split(/\s+/).filter(Boolean).map(Number) : [];
}

/** SIGKILL to every process in the namespace: the host's crash. Returns how many there were. */
export function killAll(host: Pick<LabHost, 'ns'>): number {
  const pids = pidsOf(host.ns);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return pids.length;
}

/** Removes every namespace and link named rc-mh-*, killing what runs inside. */
export function removeLab(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const ns of list.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${PREFIX}-`))) {
    killAll({ ns });
    ipQuiet('netns', 'del', ns);
  }
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
  for (const m of links.matchAll(new RegExp(`^\\d+: (${PREFIX}-[^:@]+)`, 'gm'))) ipQuiet('link', 'del', m[1] ?? '');
}

/** Makes the bridge and one namespace per host (`octet` is the last byte of its address). */
export function createLab(hosts: { name: string; octet: number }[]): LabHost[] {
  removeLab();
  ip('link', 'add', BRIDGE, 'type', 'bridge');
  ip('addr', 'add', `${VANTAGE_ADDRESS}/24`, 'dev', BRIDGE);
  ip('link', 'set', BRIDGE, 'up');
  return hosts.map(({ name, octet }, i) => {
    const host: LabHost = { name, ns: `${PREFIX}-${name}`, address: `${SUBNET}.${octet}`, link: `${PREFIX}-v${i + 1}` };
    ip('netns', 'add', host.ns);
    ip('link', 'add', host.link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.ns);
    ip('link', 'set', host.link, 'master', BRIDGE, 'up');
    ip('-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0');
    ip('-n', host.ns, 'link', 'set', 'lo', 'up');
    ip('-n', host.ns, 'link', 'set', 'eth0', 'up');
    return host;
  });
}

/** The namespace's routes, one per line: only the bridge's /24 is expected. */
export function routesOf(host: LabHost): string[] {
  const r = spawnSync('ip', ['-n', host.ns, '-4', 'route', 'show'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

/** Partition: the host's link goes down (its processes run on, cut off); `heal` brings it back. */
export const cut = (host: LabHost): void => ip('link', 'set', host.link, 'down');
export const heal = (host: LabHost): void => ip('link', 'set', host.link, 'up');

/** Runs a command inside the host; resolves with its exit code and output. */
export function runIn(host: LabHost, cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    // 'exit', not 'close': a daemon it started may hold the pipes open for as long as it runs.
    child.on('exit', (code) => {
      clearTimeout(timer);
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        resolve({ code: code ?? -1, output });
      }, 50);
    });
  });
}
