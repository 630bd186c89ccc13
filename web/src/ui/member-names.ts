/**
 * Display names of a room's members, by user id. Someone who joined after the page loaded is
 * looked up once; names already shown are filled in when the answer comes.
 */
import type { Member, RoomcastApi } from '../client/index';

export class MemberNames {
  private readonly byId = new Map<string, Member>();
  private refreshing: Promise<void> | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly api: RoomcastApi,
    private readonly roomId: string,
    members: Member[],
  ) {
    this.set(members);
  }

  nameOf(userId: string): string {
    const m = this.byId.get(userId);
    if (m) return m.displayName;
    void this.refresh();
    return 'a new member';
  }

  learners(): Member[] {
    return [...this.byId.values()].filter((m) => m.role === 'learner');
  }

  /** Called after the member list changed. */
  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  private refresh(): Promise<void> {
    this.refreshing ??= this.api
      .room(this.roomId)
      .then(({ members }) => {
        this.set(members);
        for (const l of this.listeners) l();
      })
      .catch(() => undefined)
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  private set(members: Member[]): void {
    for (const m of members) this.byId.set(m.userId, m);
  }
}
