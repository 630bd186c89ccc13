/**
 * Presence from the client's side: a heartbeat every interval while the room is open, and the
 * room's presence read back after each one. Closing the page sends an explicit leave; a page
 * that dies without one simply stops beating and drops out when the server's window passes.
 */
import type { RoomPresence } from '../../../shared/protocol/presence';
import type { RoomcastApi } from './api';

export class PresenceReporter {
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly api: RoomcastApi,
    private readonly roomId: string,
    private readonly intervalMs: number,
    private readonly onPresence: (presence: RoomPresence) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Tells the server at once; `keepalive` lets it finish while the page unloads. */
  leave(): Promise<void> {
    return this.api.leave(this.roomId, { keepalive: true });
  }

  private async beat(): Promise<void> {
    try {
      await this.api.presenceBeat(this.roomId);
      this.onPresence(await this.api.presence(this.roomId));
    } catch (err) {
      this.onError(err);
    }
  }
}
