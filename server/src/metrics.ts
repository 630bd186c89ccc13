/** Prometheus metrics an operator watches; one registry per server instance. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  messagesPersisted: Counter<'kind'>;
  messagesPublished: Counter<'path'>;
  publishFailures: Counter<'path'>;
  outboxBacklog: Gauge;
  resyncCalls: Counter;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  sendLatency: Histogram;
  loginRefusals: Counter<'limit'>;
  inviteRefusals: Counter<'limit'>;
  brokerConnectionsRevoked: Counter<'reason'>;
  revocationFailures: Counter;
  mailSent: Counter<'type'>;
  mailFailures: Counter<'kind'>;
  inboundMail: Counter<'outcome' | 'reason'>;
  jobs: Gauge<'queue' | 'state'>;
  webhookAttempts: Counter<'outcome'>;
  webhookAttemptSeconds: Histogram;
  webhookEventsFailed: Counter;
  webhooksDisabled: Counter<'reason'>;
  campaignSends: Counter<'answer'>;
  campaignRecipients: Gauge<'state'>;
  campaignGateWaiting: Gauge;
}

/** Pending and failed jobs of one queue (work/), for the `roomcast_jobs` gauge. */
export interface QueueCount {
  queue: string;
  pending: number;
  failed: number;
}

export function createMetrics(outboxBacklog: () => Promise<number>, jobCounts: () => Promise<QueueCount[]> = async () => []): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    messagesPersisted: new Counter({
      name: 'roomcast_messages_persisted_total',
      help: 'Messages committed to Postgres.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    messagesPublished: new Counter({
      name: 'roomcast_messages_published_total',
      help: 'Messages confirmed by the broker, by path: the send request, the outbox relay, or a confirm that came after the publish timeout.',
      labelNames: ['path'],
      registers: [registry],
    }),
    publishFailures: new Counter({
      name: 'roomcast_publish_failures_total',
      help: 'Publishes that were not confirmed; the outbox relay retries them.',
      labelNames: ['path'],
      registers: [registry],
    }),
    outboxBacklog: new Gauge({
      name: 'roomcast_outbox_backlog',
      help: 'Committed messages not yet confirmed by the broker.',
      registers: [registry],
      async collect() {
        this.set(await outboxBacklog());
      },
    }),
    resyncCalls: new Counter({ name: 'roomcast_resync_calls_total', help: 'Resync (message history) requests.', registers: [registry] }),
    httpRequests: new Counter({
      name: 'roomcast_http_requests_total',
      help: 'HTTP requests by route and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    loginRefusals: new Counter({
      name: 'roomcast_login_refusals_total',
      help: 'Login attempts refused with 429 before the password was checked, by the limit that refused them.',
      labelNames: ['limit'],
      registers: [registry],
    }),
    inviteRefusals: new Counter({
      name: 'roomcast_invite_refusals_total',
      help: 'Joins refused with 429 before the invite code was looked up (too many unknown codes), by the limit that refused them.',
      labelNames: ['limit'],
      registers: [registry],
    }),
    brokerConnectionsRevoked: new Counter({
      name: 'roomcast_broker_connections_revoked_total',
      help: 'Live broker connections closed after a logout, password change or end of membership, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    revocationFailures: new Counter({
      name: 'roomcast_revocation_failures_total',
      help: 'Attempts to close revoked broker connections that failed and will be retried.',
      registers: [registry],
    }),
    mailSent: new Counter({
      name: 'roomcast_mail_sent_total',
      help: 'Mails the relay accepted, by type.',
      labelNames: ['type'],
      registers: [registry],
    }),
    mailFailures: new Counter({
      name: 'roomcast_mail_failures_total',
      help: 'Mails not sent, by kind: temporary (retried), permanent (failed, address suppressed), suppressed (not tried), template (retried).',
      labelNames: ['kind'],
      registers: [registry],
    }),
    inboundMail: new Counter({
      name: 'roomcast_inbound_mail_total',
      help: 'Mails received over LMTP, one per recipient, by outcome (posted, command, bounce, discarded, refused, deferred) and reason (docs/inbound-mail.md).',
      labelNames: ['outcome', 'reason'],
      registers: [registry],
    }),
    jobs: new Gauge({
      name: 'roomcast_jobs',
      help: 'Background jobs by queue and state: pending (waiting, leased or retrying) and failed (for good).',
      labelNames: ['queue', 'state'],
      registers: [registry],
      async collect() {
        for (const q of await jobCounts()) {
          this.set({ queue: q.queue, state: 'pending' }, q.pending);
          this.set({ queue: q.queue, state: 'failed' }, q.failed);
        }
      },
    }),
    webhookAttempts: new Counter({
      name: 'roomcast_webhook_attempts_total',
      help: 'Webhook delivery attempts by outcome: delivered (2xx), failed (retried, or given up once the schedule is used up), gone (410, endpoint disabled).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    webhookAttemptSeconds: new Histogram({
      name: 'roomcast_webhook_attempt_seconds',
      help: 'Time from sending a webhook to its receiver\'s answer (or the failure); the timeout is 15 s by default.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
      registers: [registry],
    }),
    webhookEventsFailed: new Counter({
      name: 'roomcast_webhook_events_failed_total',
      help: 'Events given up after their whole retry schedule failed; the endpoint\'s stream moved on past them.',
      registers: [registry],
    }),
    webhooksDisabled: new Counter({
      name: 'roomcast_webhooks_disabled_total',
      help: 'Webhook endpoints disabled by roomcast, by reason: gone (410), failing (every attempt failed for days), owner_left.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    campaignSends: new Counter({
      name: 'roomcast_campaign_sends_total',
      help: 'Campaign mails by the relay\'s answer: accepted, slow_down (421/452), deferred (other 4xx), refused (5xx), timeout (no answer), suppressed (not sent).',
      labelNames: ['answer'],
      registers: [registry],
    }),
    campaignRecipients: new Gauge({
      name: 'roomcast_campaign_recipients',
      help: 'Recipients of running and paused campaigns by state (queued, sending, deferred, sent, failed, suppressed, cancelled); refreshed every few seconds by each server\'s campaign runner.',
      labelNames: ['state'],
      registers: [registry],
    }),
    campaignGateWaiting: new Gauge({
      name: 'roomcast_campaign_gate_waiting',
      help: '1 while this server\'s load gate holds campaign mail back (the mail server is loaded or failing, or the campaigns are paused by the gate), else 0.',
      registers: [registry],
    }),
    sendLatency: new Histogram({
      name: 'roomcast_send_seconds',
      help: 'Time from a send request to its response.',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}
