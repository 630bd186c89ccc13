/**
 * Closes a user's live broker connections through RabbitMQ's management HTTP API, the broker's
 * own tool for it. Any node answers for the whole cluster (it lists and closes connections on
 * every node), so the nodes are tried in turn until one answers.
 *
 * The server's broker user needs the `administrator` tag for this (rabbitmq/definitions.template.json):
 * the API lets `monitoring` users list every connection but close only their own.
 */
import { ManagementApi } from '../broker/management-api';

const REQUEST_TIMEOUT_MS = 3000;

export class BrokerAdmin {
  private readonly api: ManagementApi;

  constructor(urls: string[], credentials: { user: string; password: string }) {
    this.api = new ManagementApi(urls, credentials, REQUEST_TIMEOUT_MS);
  }

  /** Whether the broker user may close other users' connections (its tags include administrator). */
  async canCloseConnections(): Promise<boolean> {
    const me = (await this.api.request('GET', '/api/whoami')).body as { tags?: string[] | string };
    const tags = Array.isArray(me.tags) ? me.tags : String(me.tags ?? '').split(',');
    return tags.includes('administrator');
  }

  /** Names of the user's open connections on any node of the cluster. */
  async connectionsOf(user: string): Promise<string[]> {
    const rows = (await this.api.request('GET', `/api/connections/username/${encodeURIComponent(user)}`)).body as { name: string }[];
    return rows.map((r) => r.name);
  }

  /**
   * Closes every open connection of the user; returns how many it closed. A connection that
   * went away between the listing and the close counts as closed.
   */
  async closeConnectionsOf(user: string, reason: string): Promise<number> {
    const names = await this.connectionsOf(user);
    for (const name of names) {
      await this.api.request('DELETE', `/api/connections/${encodeURIComponent(name)}`, { headers: { 'X-Reason': reason }, done: [404] });
    }
    return names.length;
  }
}
