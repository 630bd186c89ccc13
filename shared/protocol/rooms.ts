/** Users, rooms and members as the API returns them; shared by the app server and the browser. */
import type { Role } from './messages';

export interface User {
  id: string;
  username: string;
  displayName: string;
  role: Role;
}

export interface Room {
  id: string;
  name: string;
  inviteCode: string;
  createdBy: string;
  lastSeq: number;
  createdAt: string;
}

export interface Member {
  userId: string;
  username: string;
  displayName: string;
  role: Role;
}
