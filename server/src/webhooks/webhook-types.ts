/**
 * The webhook API's shapes (docs/webhooks.md), as `/api/rooms/:id/webhooks` answers them, and
 * the payload of a webhook stream's job.
 */
import type { EventType } from '../../../shared/protocol/events';

export const WEBHOOK_QUEUE = 'webhook';

export const DISABLED_REASONS = ['paused', 'gone', 'failing', 'owner_left'] as const;
/** Why an endpoint is off: paused by an instructor, 410 from its receiver, failing for days, or its owner left the room. */
export type DisabledReason = (typeof DISABLED_REASONS)[number];

export interface WebhookEndpoint {
  id: string;
  roomId: string;
  /** The instructor who registered it (or re-enabled it after its owner left): mailed when it is disabled. */
  ownerId: string;
  url: string;
  eventTypes: EventType[];
  description: string;
  enabled: boolean;
  disabledReason: DisabledReason | null;
  disabledAt: string | null;
  /** Since when every attempt has failed; null while deliveries succeed. */
  failingSince: string | null;
  /** The room position up to which every event is delivered (or given up): delivery resumes right after it. */
  position: string;
  /** Attempts made at the next event, and when the next attempt is due (null: not waiting for a retry). */
  pendingAttempts: number;
  nextAttemptAt: string | null;
  /** Until then, the secret before the last rotation signs too. */
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** One delivery attempt, newest first under GET …/attempts. */
export interface WebhookAttempt {
  id: number;
  eventId: string;
  eventType: EventType;
  /** The event's room position. */
  position: string;
  /** 1 for the first attempt at this event, 2 for its first retry, … */
  attempt: number;
  /** The receiver's HTTP status; null when there was no answer (timeout, refused connection, refused target). */
  status: number | null;
  responseMs: number;
  error: string | null;
  /** delivered (2xx); retry (failed, will be retried); failed (the schedule is used up, the stream moved on); gone (410, endpoint disabled). */
  outcome: 'delivered' | 'retry' | 'failed' | 'gone';
  at: string;
}

/** A stream's job: the endpoint and the room whose events it delivers, in order. */
export interface WebhookJob {
  endpointId: string;
  roomId: string;
}

export const streamRef = (endpointId: string, roomId: string): string => `${endpointId}:${roomId}`;
