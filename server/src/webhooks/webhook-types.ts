/**
 * The webhook API's shapes (docs/webhooks.md), as `/api/rooms/:id/webhooks` answers them, and
 * the payload of a webhook stream's job.
 */
import type { z } from 'zod';
import type { webhookAttemptSchema, webhookEndpointSchema } from '../../../shared/protocol/webhooks';

export const WEBHOOK_QUEUE = 'webhook';

/** Why an endpoint is off: paused by an instructor, 410 from its receiver, failing for days, or its owner left the room. */
export type DisabledReason = NonNullable<WebhookEndpoint['disabledReason']>;

/** An endpoint as the API answers it (the wire contract is shared/protocol/webhooks.ts). */
export type WebhookEndpoint = z.infer<typeof webhookEndpointSchema>;

/** One delivery attempt, newest first under GET …/attempts. */
export type WebhookAttempt = z.infer<typeof webhookAttemptSchema>;

/** A stream's job: the endpoint and the room whose events it delivers, in order. */
export interface WebhookJob {
  endpointId: string;
  roomId: string;
}

export const streamRef = (endpointId: string, roomId: string): string => `${endpointId}:${roomId}`;
