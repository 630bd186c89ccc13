/**
 * Starts a real app server in-process on a free port against the real local services, and
 * makes users and rooms with unique names so tests never see each other's data.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../runtime/config';
import type { Role } from '../shared/protocol/messages';
import { startAppServer, type AppServer, type AppServerOptions } from '../server/src/app';
import { ApiClient } from './api-client';
import { testConfig } from './test-config';

export const PASSWORD = 'test-password-1';

export interface Harness {
  config: Config;
  server: AppServer;
  api: ApiClient;
  close(): Promise<void>;
}

export async function startHarness(options: AppServerOptions & { config?: Config } = {}): Promise<Harness> {
  const config = options.config ?? testConfig();
  const server = await startAppServer(config, { port: 0, ...options });
  return { config, server, api: new ApiClient(server.url), close: () => server.close() };
}

export const uniqueName = (prefix: string): string => `${prefix}-${randomBytes(5).toString('hex')}`;

export interface TestUser {
  id: string;
  username: string;
  role: Role;
  token: string;
  api: ApiClient;
}

export async function makeUser(h: Harness, role: Role, prefix = role === 'instructor' ? 'inst' : 'lrn'): Promise<TestUser> {
  const username = uniqueName(prefix);
  const user = await h.server.services.users.create({ username, displayName: username, role, password: PASSWORD });
  const login = await h.api.post('/api/auth/login', { username, password: PASSWORD });
  if (login.status !== 200) throw new Error(`login failed: ${JSON.stringify(login.body)}`);
  return { id: user.id, username, role, token: login.body.token, api: h.api.withToken(login.body.token) };
}

export interface TestRoom {
  id: string;
  inviteCode: string;
  instructor: TestUser;
  learners: TestUser[];
}

/** An instructor's new room with `learners` learners joined by invite code. */
export async function makeRoom(h: Harness, learners = 2): Promise<TestRoom> {
  const instructor = await makeUser(h, 'instructor');
  const created = await instructor.api.post('/api/rooms', { name: uniqueName('room') });
  if (created.status !== 201) throw new Error(`room creation failed: ${JSON.stringify(created.body)}`);
  const room = created.body.room as { id: string; inviteCode: string };
  const members: TestUser[] = [];
  for (let i = 0; i < learners; i++) {
    const l = await makeUser(h, 'learner');
    const joined = await l.api.post('/api/rooms/join', { inviteCode: room.inviteCode });
    if (joined.status !== 200) throw new Error(`join failed: ${JSON.stringify(joined.body)}`);
    members.push(l);
  }
  return { id: room.id, inviteCode: room.inviteCode, instructor, learners: members };
}

let counter = 0;
/** A chat message request with a fresh client message id. */
export function chat(text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  counter++;
  return { clientMsgId: `c-${Date.now()}-${counter}-${randomBytes(3).toString('hex')}`, audience: 'everyone', kind: 'chat', body: { text }, ...extra };
}

/**
 * A random private address, as the proxy would send it in X-Forwarded-For: limits count per
 * address in Redis for minutes, so a fixed one would carry counts into the next run.
 */
export const freshAddress = (): string => `10.${[...randomBytes(3)].join('.')}`;
