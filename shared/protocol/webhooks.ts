/**
 * Webhook endpoints as `/api/rooms/:roomId/webhooks` answers them. Deliveries carry a room event
 * (`roomEventSchema`) as their body, signed per Standard Webhooks.
 */
import { z } from 'zod';
import { EVENT_TYPES } from './events';

const eventTypes = z.array(z.enum(EVENT_TYPES));

export const webhookEndpointSchema = z
  .object({
    id: z.guid(),
    roomId: z.guid(),
    ownerId: z.guid().describe('The instructor who registered it (or re-enabled it after its owner left): mailed when it is disabled'),
    url: z.string(),
    eventTypes: eventTypes.describe('The event types delivered'),
    description: z.string(),
    enabled: z.boolean(),
    disabledReason: z
      .enum(['paused', 'gone', 'failing', 'owner_left'])
      .nullable()
      .describe('Why it is off: paused by an instructor, 410 from its receiver, failing for days, or its owner left the room; null while enabled'),
    disabledAt: z.iso.datetime().nullable(),
    failingSince: z.iso.datetime().nullable().describe('Since when every attempt has failed; null while deliveries succeed'),
    position: z.string().describe('The room position up to which every event is delivered (or given up): delivery resumes right after it'),
    pendingAttempts: z.number().int().min(0).describe('Attempts made at the next event'),
    nextAttemptAt: z.iso.datetime().nullable().describe('When the next attempt is due; null when not waiting for a retry'),
    previousSecretExpiresAt: z.iso.datetime().nullable().describe('Until then, the secret before the last rotation signs too'),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .describe('A webhook endpoint of a room');
export type WebhookEndpointBody = z.infer<typeof webhookEndpointSchema>;

/** POST /api/rooms/:roomId/webhooks → 201: the secret is in this answer only. */
export const createdWebhookSchema = z.object({
  endpoint: webhookEndpointSchema.extend({ secret: z.string().describe('The signing secret (`whsec_…`); shown this once') }),
});

/** GET, PATCH …/webhooks/:webhookId, POST …/replay */
export const webhookSchema = z.object({ endpoint: webhookEndpointSchema });

/** GET /api/rooms/:roomId/webhooks */
export const webhookListSchema = z.object({ endpoints: z.array(webhookEndpointSchema) });

/** POST …/webhooks/:webhookId/rotate-secret */
export const rotatedSecretSchema = z
  .object({
    secret: z.string().describe('The new signing secret; shown this once'),
    previousSecretExpiresAt: z.iso.datetime().describe('Until then the previous secret signs too'),
  })
  .describe('A new signing secret');

export const webhookAttemptSchema = z
  .object({
    id: z.number().int(),
    eventId: z.guid(),
    eventType: z.enum(EVENT_TYPES),
    position: z.string().describe('The event\u2019s room position'),
    attempt: z.number().int().min(1).describe('1 for the first attempt at this event, 2 for its first retry, …'),
    status: z.number().int().nullable().describe('The receiver\u2019s HTTP status; null when there was no answer (timeout, refused connection, refused target)'),
    responseMs: z.number().min(0),
    error: z.string().nullable(),
    outcome: z
      .enum(['delivered', 'retry', 'failed', 'gone'])
      .describe('delivered (2xx); retry (failed, will be retried); failed (the schedule is used up, the stream moved on); gone (410, endpoint disabled)'),
    at: z.iso.datetime(),
  })
  .describe('One delivery attempt');

/** GET …/webhooks/:webhookId/attempts */
export const webhookAttemptsSchema = z.object({ attempts: z.array(webhookAttemptSchema).describe('Newest first') });
