/**
 * Delivers room events to webhook endpoints, in order, on leased work (docs/webhooks.md,
 * docs/decisions/0010-webhook-order.md).
 *
 * Each endpoint and room is one long-lived job on the 'webhook' queue (a *stream*), whose
 * position lives in `webhook_cursors`. A pass of a stream reads the room's events after the
 * cursor and sends them one at a time; the cursor moves in Postgres only after a 2xx, or after an
 * event has used up its retry schedule and is recorded as failed. A failed attempt ends the pass
 * and postpones the job until the retry is due, so a later event of the room waits behind it,
 * while every other stream goes on. A pass that has caught up postpones its job for the idle
 * recheck; a commit in the room wakes it sooner (RoomEventListener → `wake`).
 *
 * Passes run in the background, up to `concurrency` at once per app server: the worker hands a
 * claimed job to a pass and returns at once (outcome `held`), so a receiver that hangs for its
 * whole timeout holds one slot and delays nothing else. The pass settles its own job. One room's
 * passes take at most MAX_PASSES_PER_ROOM of the slots, so a room whose receivers all hang
 * cannot stall the other rooms.
 *
 * At least once: a crash between a receiver's 2xx and the cursor write sends that one event
 * again, with the same webhook-id; one event per stream is in flight, so that is the bound.
 */
import { performance } from 'node:perf_hooks';
import { parsePosition, type RoomEvent, type RoomPosition } from '../../../shared/protocol/events';
import { inTransaction, type Pool } from '../db/pool';
import type { EventStore } from '../events/event-store';
import type { RoomEventListener } from '../events/room-event-listener';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Job, JobQueue } from '../work/job-queue';
import { exponentialBackoff, type RetrySchedule } from '../work/retry-schedule';
import { Worker } from '../work/worker';
import type { AttemptRecord, StreamTarget, WebhookStore } from './webhook-store';
import type { WebhookSender } from './webhook-sender';
import { streamRef, type DisabledReason, type WebhookJob } from './webhook-types';

/** Events read from the room at a time. */
const PAGE_SIZE = 100;
/** A pass starts no new delivery after this long; the job is due again at once, behind those already due. */
const MAX_PASS_MS = 10_000;
/**
 * A caught-up stream looks again after this long even if no commit woke it: the bound on what a
 * lost wake costs (a wake query that failed; a room whose endpoint no server knew of yet).
 */
export const IDLE_RECHECK_MS = 60_000;
/** A disabled stream's job sleeps this long; resuming wakes it at once. */
const DISABLED_RECHECK_MS = 3600_000;
/** A pass that failed on our side (Postgres away) is due again after this long. */
const ERROR_RETRY_MS = 5000;
/**
 * A stream that caught up stays in its pass this long for the room's next commit, while at most
 * half the slots are taken: a busy room's events then go out without a claim in between.
 */
const LINGER_MS = 1000;
/** Which rooms have enabled endpoints is read again this often (each server's own changes at once). */
const ROOMS_REFRESH_MS = 10_000;
/** Attempts are kept this long for GET …/attempts. */
const KEEP_ATTEMPTS_MS = 7 * 24 * 3600_000;
const PRUNE_EVERY_MS = 3600_000;
/** At shutdown, deliveries in flight get this long to finish before they are cut. */
const STOP_GRACE_MS = 2000;
/** Jobs claimed at a time. */
const MAX_BATCH = 8;
/**
 * Passes of one room running at once on one server, at most: a room whose receivers hang holds
 * this many slots, never all of them. A claimed stream of a room over its share waits this long
 * (behind every other room's due streams) and is claimed again.
 */
export const MAX_PASSES_PER_ROOM = 4;
const ROOM_SHARE_WAIT_MS = 500;

/** Why a lingering pass stopped waiting: a commit in its room, or a change to its streams (a replay, a pause, a new URL). */
type Woken = 'commit' | 'changed' | false;

/**
 * How a pass ends: its endpoint is gone (`done`); due again after `ms` (`later`), unless the
 * fence the pass holds is no longer the stream's; overtaken (`lost`): a newer pass, or a change
 * that woke the job for one, took the fence, and the job is not this pass's to touch any more;
 * or cut short by a shutdown (`stopped`), due again now for another server.
 */
type PassEnd = { kind: 'done' } | { kind: 'later'; ms: number; fence?: number } | { kind: 'lost' } | { kind: 'stopped' };
const later = (ms: number, fence?: number): PassEnd => (fence === undefined ? { kind: 'later', ms } : { kind: 'later', ms, fence });

export interface DispatcherOptions {
  pool: Pool;
  store: WebhookStore;
  events: Pick<EventStore, 'roomEvents'>;
  listener: Pick<RoomEventListener, 'followAll'>;
  sender: Pick<WebhookSender, 'send'>;
  jobs: JobQueue<WebhookJob>;
  /** Delay before each retry of an event; null: give the event up. */
  schedule: RetrySchedule;
  disableAfterMs: number;
  concurrency: number;
  /** A single attempt's limit, to size the lease. */
  timeoutMs: number;
  /** Disables an endpoint and tells its owner (in one transaction). */
  disable: (endpointId: string, reason: Exclude<DisabledReason, 'paused'>) => Promise<void>;
  metrics: Pick<Metrics, 'webhookAttempts' | 'webhookAttemptSeconds' | 'webhookEventsFailed'>;
  logger: Logger;
  /** How often the worker looks for due jobs when nothing woke it. */
  intervalMs?: number;
}

export class WebhookDispatcher {
  readonly worker: Worker<WebhookJob>;
  private readonly leaseMs: number;
  /** Passes running in this process, by stream ref. */
  private readonly active = new Map<string, { controller: AbortController; roomId: string }>();
  private readonly running = new Set<Promise<void>>();
  /** Streams running here whose room had a commit during the pass: the pass reads again before it sleeps. */
  private readonly dirty = new Set<string>();
  /** Rooms with an enabled endpoint: only their commits are worth a query. */
  private rooms = new Set<string>();
  private readonly heardRooms = new Set<string>();
  /** Passes here that caught up and wait for their room's next commit, by room. */
  private readonly lingering = new Map<string, Set<(why: Woken) => void>>();
  private gatherTimer: NodeJS.Immediate | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private unfollow: (() => void) | null = null;
  private stopping = false;
  private lastPrune = 0;

  constructor(private readonly o: DispatcherOptions) {
    this.leaseMs = MAX_PASS_MS + o.timeoutMs + 30_000;
    const batch = Math.min(MAX_BATCH, o.concurrency);
    this.worker = new Worker<WebhookJob>({
      queue: o.jobs,
      batch,
      leaseMs: this.leaseMs,
      intervalMs: o.intervalMs ?? 250,
      logger: o.logger,
      // Only for a handler that throws, which this one does not: each pass settles its own job.
      schedule: exponentialBackoff({ firstMs: 1000, maxMs: 60_000 }),
      ready: () => !this.stopping && this.active.size + batch <= o.concurrency,
      handle: async (jobs) => {
        const waiting: { id: number; delayMs: number }[] = [];
        for (const job of jobs) {
          if (this.passesOf(job.payload.roomId) >= Math.min(MAX_PASSES_PER_ROOM, o.concurrency)) waiting.push({ id: job.id, delayMs: ROOM_SHARE_WAIT_MS });
          else this.launch(job);
        }
        // Over its room's share: due again a little later, for whichever server has room then.
        if (waiting.length > 0) await o.jobs.postpone(o.pool, waiting);
        return jobs.map((job) => ({ id: job.id, outcome: 'held' as const }));
      },
    });
  }

  async start(): Promise<void> {
    this.stopping = false;
    this.unfollow = this.o.listener.followAll((roomId) => this.heard(roomId));
    // Every room is new to a server that starts: its streams are woken for whatever committed
    // while it was not listening, as after a listener's reconnect.
    await this.refresh();
    this.worker.start();
  }

  /** Stops claiming, lets deliveries in flight finish for a moment, then cuts them; their jobs are due again at once for another server. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.unfollow?.();
    this.unfollow = null;
    if (this.gatherTimer) clearImmediate(this.gatherTimer);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.gatherTimer = this.refreshTimer = null;
    for (const waiting of this.lingering.values()) for (const wake of waiting) wake('changed');
    await this.worker.stop();
    const passes = [...this.running];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(passes), new Promise((r) => (timer = setTimeout(r, STOP_GRACE_MS)))]);
    clearTimeout(timer);
    for (const a of this.active.values()) a.controller.abort();
    await Promise.allSettled([...this.running]);
  }

  /** A room now has an enabled endpoint (made or resumed here): its commits wake streams from now on. */
  noteRoom(roomId: string): void {
    this.rooms.add(roomId);
  }

  /**
   * A room's streams were changed and made due now (a resume, a replay, a new URL): a pass of
   * theirs lingering here ends (the change took its fence and its job), and this server claims
   * them without waiting for its interval.
   */
  poke(roomId: string): void {
    for (const wake of this.lingering.get(roomId) ?? []) wake('changed');
    this.worker.wake();
  }

  /** Passes of this room running in this process. */
  private passesOf(roomId: string): number {
    let n = 0;
    for (const a of this.active.values()) if (a.roomId === roomId) n++;
    return n;
  }

  /** Passes running in this process: for tests and metrics. */
  get inFlight(): number {
    return this.active.size;
  }

  private heard(roomId: string): void {
    if (this.stopping) return;
    // Passes running here read again before they sleep, whether or not this server knew the room
    // had endpoints (the pass's own server is the one that must not miss the commit).
    for (const [ref, a] of this.active) if (roomId === '*' || a.roomId === roomId) this.dirty.add(ref);
    const lingering = roomId === '*' ? [...this.lingering.values()] : [this.lingering.get(roomId) ?? []];
    for (const waiting of lingering) for (const wake of waiting) wake('commit');
    if (roomId === '*') for (const r of this.rooms) this.heardRooms.add(r);
    else if (this.rooms.has(roomId)) this.heardRooms.add(roomId);
    else return;
    // Notifications that came together are answered by one query.
    this.gatherTimer ??= setImmediate(() => {
      this.gatherTimer = null;
      void this.wakeRooms();
    });
  }

  /** Waits up to LINGER_MS for a commit in the room, or a change to its streams; false: neither came. */
  private linger(roomId: string, deadline: number): Promise<Woken> {
    const ms = Math.min(LINGER_MS, deadline - performance.now());
    if (this.stopping || ms <= 0 || this.active.size > this.o.concurrency / 2) return Promise.resolve(false);
    return new Promise((resolve) => {
      let waiting = this.lingering.get(roomId);
      if (!waiting) this.lingering.set(roomId, (waiting = new Set()));
      const set = waiting;
      const wake = (why: Woken): void => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.lingering.get(roomId) === set) this.lingering.delete(roomId);
        resolve(why);
      };
      const timer = setTimeout(() => wake(false), ms);
      set.add(wake);
    });
  }

  /**
   * Wakes the streams of the rooms heard of: in one query, only those not waiting out a retry.
   * A stream whose pass runs here is marked instead, and its pass reads again before it sleeps
   * (or wakes it once its postponement is written), so no commit is left for the idle recheck.
   */
  private async wakeRooms(): Promise<void> {
    const rooms = [...this.heardRooms];
    this.heardRooms.clear();
    if (rooms.length === 0 || this.stopping) return;
    try {
      const refs: string[] = [];
      for (const s of await this.o.store.wakeable(rooms)) {
        const ref = streamRef(s.endpointId, s.roomId);
        if (this.active.has(ref)) this.dirty.add(ref);
        else refs.push(ref);
      }
      if (refs.length > 0) {
        await this.o.jobs.wake(this.o.pool, refs);
        this.worker.wake();
      }
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message, rooms: rooms.length }, 'could not wake webhook streams; the idle recheck will deliver');
    }
  }

  private async refresh(): Promise<void> {
    try {
      const before = this.rooms;
      this.rooms = new Set(await this.o.store.roomsWithEndpoints());
      // Endpoints another server made (or resumed): whatever their rooms committed meanwhile.
      for (const room of this.rooms) if (!before.has(room)) this.heard(room);
      if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
        this.lastPrune = Date.now();
        await this.o.store.pruneAttempts(KEEP_ATTEMPTS_MS);
      }
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'could not read which rooms have webhooks');
    }
    if (!this.stopping) this.refreshTimer = setTimeout(() => void this.refresh(), ROOMS_REFRESH_MS);
  }

  private launch(job: Job<WebhookJob>): void {
    const controller = new AbortController();
    const entry = { controller, roomId: job.payload.roomId };
    this.active.set(job.ref, entry);
    // A stream of this room exists: its commits are worth a wake from now on.
    this.rooms.add(job.payload.roomId);
    const run = this.run(job, controller).finally(() => {
      this.running.delete(run);
      if (this.active.get(job.ref) === entry) this.active.delete(job.ref);
      if (this.dirty.delete(job.ref)) this.heard(job.payload.roomId);
      // A slot is free.
      if (!this.stopping) this.worker.wake();
    });
    this.running.add(run);
  }

  /** One pass, then its job settled: done (the endpoint is gone), postponed, released (a shutdown), or left to whoever took it. */
  private async run(job: Job<WebhookJob>, controller: AbortController): Promise<void> {
    const claimedAt = performance.now();
    let end: PassEnd;
    try {
      end = await this.pass(job, controller.signal);
    } catch (err) {
      this.o.logger.warn({ ref: job.ref, err: (err as Error).message }, 'webhook pass failed; retrying it shortly');
      end = later(ERROR_RETRY_MS);
    }
    try {
      if (end.kind === 'later' && !(await this.postpone(job, end))) end = { kind: 'lost' };
      if (end.kind === 'done') await this.o.jobs.complete([job.id]);
      // Stopped: due again now. Unless our lease may have run out meanwhile: then someone else
      // may hold the job, and it is theirs. (A lost pass never releases: that would hand a job
      // someone holds to a third pass, and two passes that keep taking each other's fence
      // would send every event twice.)
      else if (end.kind === 'stopped' && performance.now() - claimedAt < this.leaseMs - 5000) await this.o.jobs.release([job.id]);
    } catch (err) {
      this.o.logger.warn({ ref: job.ref, err: (err as Error).message }, 'could not settle a webhook job; its lease will run out');
    }
  }

  /**
   * Postpones the job, unless the stream took a new fence since the pass began (a replay, a
   * pause, a resume on any server): that change woke the job, and postponing now would undo the
   * wake. Deciding under the cursor's row lock orders the two. Resolves to false: not postponed.
   */
  private async postpone(job: Job<WebhookJob>, end: { ms: number; fence?: number }): Promise<boolean> {
    const { fence } = end;
    if (fence === undefined) {
      await this.o.jobs.postpone(this.o.pool, [{ id: job.id, delayMs: end.ms }]);
      return true;
    }
    return inTransaction(this.o.pool, async (tx) => {
      if ((await this.o.store.lockFence(tx, job.payload.endpointId, job.payload.roomId)) !== fence) return false;
      await this.o.jobs.postpone(tx, [{ id: job.id, delayMs: end.ms }]);
      return true;
    });
  }

  private async pass(job: Job<WebhookJob>, signal: AbortSignal): Promise<PassEnd> {
    const { endpointId, roomId } = job.payload;
    const state = await this.o.store.beginPass(endpointId, roomId);
    if (!state) return { kind: 'done' };
    let target: StreamTarget = state.target;
    if (!target.enabled) return later(DISABLED_RECHECK_MS, state.fence);
    // Someone who is no longer an instructor of the room must not go on reading it through a URL.
    if (target.ownerRole !== 'instructor') return this.ownerLeft(endpointId, state.fence);
    if (state.retryInMs > 0) return later(state.retryInMs, state.fence);
    const deadline = performance.now() + MAX_PASS_MS;
    let pos = state.position;
    let attempts = state.attempts;
    /** The cursor in memory is ahead of Postgres's: events the endpoint does not take were skipped. */
    let skipped = false;
    const saveSkips = async (): Promise<boolean> => !skipped || this.o.store.skipTo(endpointId, roomId, state.fence, pos);

    for (;;) {
      this.dirty.delete(job.ref);
      const page = await this.o.events.roomEvents(roomId, { id: target.ownerId, role: 'instructor' }, pos, PAGE_SIZE);
      if (page.events.length > 0) {
        // The owner's role is read again after every read of events (and with every attempt's
        // record, before the next send): once their removal commits, the next send never happens,
        // and no event committed after it is ever sent.
        const now = await this.o.store.target(endpointId);
        if (!now) return { kind: 'done' };
        if (!now.enabled) return later(DISABLED_RECHECK_MS, state.fence);
        if (now.ownerRole !== 'instructor') return this.ownerLeft(endpointId, state.fence);
        target = now;
      }
      for (const event of page.events) {
        const at = parsePosition(event.position) as RoomPosition;
        if (!target.eventTypes.includes(event.type)) {
          pos = at;
          skipped = true;
          continue;
        }
        if (this.stopping || performance.now() > deadline) return (await saveSkips()) ? later(0, state.fence) : { kind: 'lost' };
        const attempt = attempts + 1;
        const step = await this.attempt(endpointId, roomId, state.fence, target, event, at, attempt, signal);
        if (step.end) return step.end;
        target = step.target;
        if (target.ownerRole !== 'instructor') return this.ownerLeft(endpointId, state.fence);
        if (step.advanced) {
          pos = at;
          attempts = 0;
          skipped = false;
        }
      }
      if (page.hasMore) continue;
      // Caught up: everything up to the room's head is dealt with.
      if (page.next.seq !== pos.seq || page.next.n !== pos.n) {
        pos = page.next;
        skipped = true;
      }
      if (!(await saveSkips())) return { kind: 'lost' };
      skipped = false;
      if (this.dirty.has(job.ref) && !this.stopping && performance.now() < deadline) continue;
      const woken = await this.linger(roomId, deadline);
      if (woken === 'commit') {
        // The endpoint may have changed while this pass waited (a rotated secret, new types).
        const now = await this.o.store.target(endpointId);
        if (!now) return { kind: 'done' };
        if (!now.enabled) return later(DISABLED_RECHECK_MS, state.fence);
        if (now.ownerRole !== 'instructor') return this.ownerLeft(endpointId, state.fence);
        target = now;
        continue;
      }
      // Changed: due again now, to start over from Postgres (or, when the change took the fence, already due for a new pass).
      return later(woken === 'changed' ? 0 : IDLE_RECHECK_MS, state.fence);
    }
  }

  /** The endpoint's owner is no longer an instructor of the room: it is disabled for good (it cannot be resumed), and the pass ends. */
  private async ownerLeft(endpointId: string, fence: number): Promise<PassEnd> {
    await this.o.disable(endpointId, 'owner_left');
    return later(DISABLED_RECHECK_MS, fence);
  }

  /** Sends one event once and records what came of it; `end` set: the pass ends here. */
  private async attempt(
    endpointId: string,
    roomId: string,
    fence: number,
    target: StreamTarget,
    event: RoomEvent,
    at: RoomPosition,
    attempt: number,
    signal: AbortSignal,
  ): Promise<{ end?: PassEnd; advanced: boolean; target: StreamTarget }> {
    const result = await this.o.sender.send({ url: target.url, secrets: target.secrets, id: event.id, body: JSON.stringify(event) }, signal);
    // Cut at shutdown: whether it arrived is unknown, so nothing is recorded and the next pass sends it again.
    if (result.kind === 'aborted') return { end: { kind: 'stopped' }, advanced: false, target };
    this.o.metrics.webhookAttempts.inc({ outcome: result.kind });
    this.o.metrics.webhookAttemptSeconds.observe(result.responseMs / 1000);
    const base = { event: { id: event.id, type: event.type, position: event.position }, attempt, status: result.status, responseMs: result.responseMs, error: result.error };
    let record: AttemptRecord;
    let end: PassEnd | undefined;
    if (result.kind === 'delivered') {
      record = { ...base, outcome: 'delivered', advanceTo: at, cursorAttempts: 0, retryInMs: null, failing: 'clear' };
    } else if (result.kind === 'gone') {
      // The event stays after the cursor: re-enabling the endpoint sends it first.
      record = { ...base, outcome: 'gone', advanceTo: null, cursorAttempts: attempt, retryInMs: null, failing: 'mark' };
    } else {
      const delay = this.o.schedule(attempt);
      if (delay === null) {
        this.o.metrics.webhookEventsFailed.inc();
        record = { ...base, outcome: 'failed', advanceTo: at, cursorAttempts: 0, retryInMs: null, failing: 'mark' };
      } else {
        // Retry-After may slow us down, never speed us up.
        const wait = Math.max(delay, result.retryAfterMs ?? 0);
        record = { ...base, outcome: 'retry', advanceTo: null, cursorAttempts: attempt, retryInMs: wait, failing: 'mark' };
        end = later(wait, fence);
      }
    }
    const r = await this.o.store.record(endpointId, roomId, fence, record);
    if (!r.target) return { end: { kind: 'done' }, advanced: false, target };
    if (!r.held) return { end: { kind: 'lost' }, advanced: false, target };
    if (result.kind === 'gone') {
      await this.o.disable(endpointId, 'gone');
      return { end: later(DISABLED_RECHECK_MS, fence), advanced: false, target };
    }
    if (record.failing === 'mark' && r.failingForMs >= this.o.disableAfterMs) {
      await this.o.disable(endpointId, 'failing');
      return { end: later(DISABLED_RECHECK_MS, fence), advanced: record.advanceTo !== null, target };
    }
    if (!r.target.enabled) return { end: later(DISABLED_RECHECK_MS, fence), advanced: record.advanceTo !== null, target: r.target };
    return { end, advanced: record.advanceTo !== null, target: r.target };
  }
}
