/**
 * Closes a user's live broker connections through RabbitMQ's management HTTP API, the broker's
 * own tool for it. Any node answers for the whole cluster (it lists and closes connections on
 * every node), so the nodes are tried in turn until one answers.
 *
 * The server's broker user needs the `administrator` tag for this (rabbitmq/definitions.template.json):
 * the API lets `monitoring` users list every connection but close only their own.
 */
import type { Config } from '../../../runtime/config';

/** One node's management API did not answer, or answered with an error. */
export class BrokerAdminError extends Error {
  override name = 'BrokerAdminError';
  readonly code = 'broker_admin_failed';
}

const REQUEST_TIMEOUT_MS = 3000;

/** Management API base URLs of every node, in node order. */
export function managementUrls(config: Config): string[] {
  return config.rabbitmq.nodes.map((n) => `http://127.0.0.1:${n.managementPort}`);
}

export class BrokerAdmin {
  private readonly authorization: string;

  constructor(
    private readonly urls: string[],
    credentials: { user: string; password: string },
  ) {
    this.authorization = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`;
  }

  /** Whether the broker user may close other users' connections (its tags include administrator). */
  async canCloseConnections(): Promise<boolean> {
    const me = (await this.request('GET', '/api/whoami')) as { tags?: string[] | string };
    const tags = Array.isArray(me.tags) ? me.tags : String(me.tags ?? '').split(',');
    return tags.includes('administrator');
  }

  /** Names of the user's open connections on any node of the cluster. */
  async connectionsOf(user: string): Promise<string[]> {
    const rows = (await this.request('GET', `/api/connections/username/${encodeURIComponent(user)}`)) as { name: string }[];
    return rows.map((r) => r.name);
  }

  /**
   * Closes every open connection of the user; returns how many it closed. A connection that
   * went away between the listing and the close counts as closed.
   */
  async closeConnectionsOf(user: string, reason: string): Promise<number> {
    const names = await this.connectionsOf(user);
    for (const name of names) {
      await this.request('DELETE', `/api/connections/${encodeURIComponent(name)}`, { 'X-Reason': reason }, [404]);
    }
    return names.length;
  }

  /** Tries each node until one answers; `accept` lists error statuses that count as done. */
  private async request(method: string, path: string, headers: Record<string, string> = {}, accept: number[] = []): Promise<unknown> {
    const failures: string[] = [];
    for (const base of this.urls) {
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: { authorization: this.authorization, ...headers },
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      } catch (err) {
        failures.push(`${base}: ${(err as Error).message}`);
        continue;
      }
      const text = await res.text();
      if (res.ok || accept.includes(res.status)) return text ? (JSON.parse(text) as unknown) : null;
      // 401/403 is a configuration problem every node shares; anything else may be this node's alone.
      if (res.status === 401 || res.status === 403) {
        throw new BrokerAdminError(`${method} ${path}: ${res.status} ${text.slice(0, 200)} (does the broker user have the administrator tag?)`);
      }
      failures.push(`${base}: ${res.status} ${text.slice(0, 200)}`);
    }
    throw new BrokerAdminError(`${method} ${path} failed on every node: ${failures.join('; ')}`);
  }
}
