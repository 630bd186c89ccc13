/**
 * Presence from the client's side: a heartbeat every interval while the room is open (it keeps
 * this member online), and the room's presence read when the connection goes live; after that,
 * changes come pushed on the room's subscriptions (RoomClient). Closing the page sends an
 * explicit leave; a page that dies without one stops beating and drops out after the window.
 */
import type { RoomPresence } from '../../../shared/protocol/presence';
import type { RoomcastApi } from './api';

export class PresenceReporter {
  private timer: ReturnType<typeof setInterval> | undefined;
  /** False once stopped: a beat still in flight then reports nothing. */
  private running = false;

  constructor(
    private readonly api: RoomcastApi,
    private readonly roomId: string,
    private readonly intervalMs: number,
    private readonly onPresence: (presence: RoomPresence) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    this.running = true;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
  }

  stop(): void {
    this.running = false;
    clearInterval(this.timer);
  }

  /** Tells the server at once; `keepalive` lets it finish while the page unloads. */
  leave(): Promise<void> {
    return this.api.leave(this.roomId, { keepalive: true });
  }

  /** Reads who is online now (at start and after a reconnect, when pushes may have been missed). */
  refresh(): void {
    void this.read();
  }

  private async beat(): Promise<void> {
    try {
      await this.api.presenceBeat(this.roomId);
    } catch (err) {
      if (this.running) this.onError(err);
    }
  }

  private async read(): Promise<void> {
    try {
      const presence = await this.api.presence(this.roomId);
      if (this.running) this.onPresence(presence);
    } catch (err) {
      if (this.running) this.onError(err);
    }
  }
}
