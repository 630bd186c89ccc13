/**
 * What operators read: liveness, readiness and the operators' view of the mail queues. Not used
 * by the pages; here so the API's description and the server share one definition.
 */
import { z } from 'zod';

/** GET /healthz */
export const healthSchema = z.object({ status: z.literal('ok') }).describe('The process answers');

const upDown = z.enum(['up', 'down']);

/** GET /readyz: 200 when everything is up, 503 with the same shape naming what is down. */
export const readinessSchema = z
  .object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.object({ postgres: upDown, redis: upDown, broker: upDown }),
  })
  .describe('Whether Postgres, Redis and the broker all answer');
export type Readiness = z.infer<typeof readinessSchema>;

/** GET /api/admin/mail */
export const mailReportSchema = z
  .object({
    queues: z
      .array(
        z.object({
          queue: z.string(),
          pending: z.number().int().min(0).describe('Jobs not finished: due, leased or waiting for a retry'),
          failed: z.number().int().min(0),
          oldestPendingSeconds: z.number().min(0).describe('How long the oldest unfinished job has waited; 0 when none'),
        }),
      )
      .describe('Every mail queue'),
    failures: z
      .array(
        z.object({
          id: z.number().int(),
          to: z.string(),
          type: z.string().describe('The mail template'),
          attempts: z.number().int().min(0),
          error: z.string().nullable(),
          failedAt: z.iso.datetime(),
        }),
      )
      .describe('The newest mails that failed for good (at most 50)'),
    suppressions: z.object({
      total: z.number().int().min(0),
      newest: z.array(z.object({ email: z.string(), reason: z.string(), createdAt: z.iso.datetime() })).describe('At most 50'),
    }),
    templateProblems: z
      .array(z.object({ type: z.string(), file: z.string(), error: z.string(), at: z.iso.datetime().describe('When the edit was refused') }))
      .describe('Template edits refused (the previous version is in use)'),
  })
  .describe('The mail channel as an operator sees it');
export type MailReport = z.infer<typeof mailReportSchema>;
