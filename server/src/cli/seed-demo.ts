/**
 * The demo: one instructor, three learners, one room, and a verified address for each user
 * (`<username>@roomcast.localhost`: the development relay keeps every mail on this machine).
 * Idempotent: running it again reuses what exists. `npm start` calls `seedDemo`; `npm run seed`
 * runs it on its own.
 */
import type { Config } from '../../../runtime/config';
import { migrate } from '../db/migrate';
import { createLogger } from '../logger';
import { buildServices } from '../services';

export const DEMO_PASSWORD = 'roomcast-demo';
const DEMO_ROOM = 'Demo class';
const DEMO_MAIL_DOMAIN = 'roomcast.localhost';
const INSTRUCTOR = { username: 'ada', displayName: 'Ada', role: 'instructor' } as const;
const LEARNERS = [
  { username: 'ben', displayName: 'Ben', role: 'learner' },
  { username: 'cleo', displayName: 'Cleo', role: 'learner' },
  { username: 'dev', displayName: 'Dev', role: 'learner' },
] as const;

export interface DemoSeed {
  password: string;
  instructor: string;
  learners: string[];
  room: { id: string; name: string; inviteCode: string };
}

export async function seedDemo(config: Config): Promise<DemoSeed> {
  const services = buildServices(config, createLogger({ logLevel: 'warn' }, 'seed'));
  try {
    await migrate(services.pool);
    if (!(await services.broker.ready(10_000))) throw new Error('the broker is not reachable; start the services first (npm run services -- up)');
    const ada = await services.users.create({ ...INSTRUCTOR, password: DEMO_PASSWORD });
    const learners = await Promise.all(LEARNERS.map((l) => services.users.create({ ...l, password: DEMO_PASSWORD })));
    for (const u of [ada, ...learners]) await services.users.setVerifiedEmail(u.id, `${u.username}@${DEMO_MAIL_DOMAIN}`);
    const session = { userId: ada.id, username: ada.username, displayName: ada.displayName, role: ada.role };
    const existing = (await services.rooms.forUser(ada.id)).find((r) => r.name === DEMO_ROOM);
    const room = (existing && (await services.rooms.get(existing.id))) ?? (await services.roomService.create(session, DEMO_ROOM));
    for (const l of learners) {
      await services.roomService.join({ userId: l.id, username: l.username, displayName: l.displayName, role: l.role }, room.inviteCode);
    }
    return {
      password: DEMO_PASSWORD,
      instructor: ada.username,
      learners: learners.map((l) => l.username),
      room: { id: room.id, name: room.name, inviteCode: room.inviteCode },
    };
  } finally {
    await services.close();
  }
}
