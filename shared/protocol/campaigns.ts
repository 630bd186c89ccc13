/**
 * Bulk announcements by e-mail as `/api/campaigns` answers them (docs/campaigns.md): the
 * campaign, and where each recipient is.
 */
import { z } from 'zod';

export const CAMPAIGN_STATES = ['running', 'paused', 'cancelled', 'done'] as const;
export type CampaignState = (typeof CAMPAIGN_STATES)[number];

/** Where a recipient is: `queued` not tried yet, `sending` leased to a sender now, `deferred` tried and due again, then one of the final four. */
export const RECIPIENT_STATES = ['queued', 'sending', 'deferred', 'sent', 'failed', 'suppressed', 'cancelled'] as const;
export type RecipientState = (typeof RECIPIENT_STATES)[number];

const counts = z
  .object(Object.fromEntries(RECIPIENT_STATES.map((s) => [s, z.number().int().min(0)])) as Record<RecipientState, z.ZodNumber>)
  .describe('Recipients in each state; they add up to `recipients`');

export const campaignSchema = z
  .object({
    id: z.guid(),
    createdBy: z.guid().nullable().describe('The instructor who sent it; null when the operators did'),
    roomIds: z.array(z.guid()),
    subject: z.string(),
    text: z.string(),
    state: z.enum(CAMPAIGN_STATES),
    pausedBy: z.enum(['user', 'gate']).nullable().describe('`gate`: the load gate paused it at its deadline and resumes it when the mail server is healthy; `user`: paused by hand'),
    pauseReason: z.string().nullable(),
    pausedAt: z.iso.datetime().nullable(),
    stopPoint: z
      .object({ counts, nextRecipientId: z.guid().nullable() })
      .nullable()
      .describe('Where it stopped at the last pause: the counts then, and the first recipient still to send'),
    waiting: z.string().nullable().describe('Why the load gate holds sending back right now (a slow or loaded mail server, a rate ceiling); null while mail flows'),
    recipients: z.number().int().min(0),
    counts,
    perMinute: z.number().min(0).describe('Mails handed to the relay in the last minute: the current pace'),
    createdAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().nullable(),
  })
  .describe('A bulk announcement by e-mail');
export type CampaignBody = z.infer<typeof campaignSchema>;

export const campaignResponseSchema = z.object({ campaign: campaignSchema });
export const campaignListSchema = z.object({ campaigns: z.array(campaignSchema) });

export const campaignRecipientSchema = z.object({
  userId: z.guid(),
  name: z.string(),
  roomId: z.guid().describe('The room the recipient is mailed as a member of'),
  state: z.enum(RECIPIENT_STATES),
  attempts: z.number().int().min(0),
  answer: z.string().nullable().describe('The mail server\u2019s last answer (or why it was not sent)'),
  updatedAt: z.iso.datetime().nullable().describe('When it became final; null while it is not'),
});
export const campaignRecipientsSchema = z.object({ recipients: z.array(campaignRecipientSchema) });
