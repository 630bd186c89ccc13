/**
 * Inbound mail (docs/inbound-mail.md): replies by mail that post into the room, mail commands,
 * and delivery status notifications that suppress addresses. The MTA hands mail for the inbound
 * domain to this app server's LMTP listener; the addresses it accepts are issued on the mail
 * channel's notifications (`MailChannel.addresses`).
 */
import type { Config } from '../../../runtime/config';
import type { Pool } from '../db/pool';
import type { Logger } from '../logger';
import type { MailChannel } from '../mail/mail-channel';
import type { SendMessage } from '../messages/send-message';
import type { Metrics } from '../metrics';
import type { Redis } from '../redis';
import { BounceStore } from './bounce-store';
import { InboundProcessor } from './inbound-processor';
import { InboundRate } from './inbound-rate';
import { LmtpListener } from './lmtp-server';

export type { InboundOutcome } from './inbound-processor';

export class InboundMail {
  readonly listener: LmtpListener;

  constructor(o: { config: Config; pool: Pool; redis: Redis; mail: MailChannel; sendMessage: SendMessage; metrics: Metrics; logger: Logger }) {
    const { config } = o;
    const processor = new InboundProcessor({
      pool: o.pool,
      mail: o.mail,
      bounces: new BounceStore(o.pool, o.mail.store),
      sendMessage: o.sendMessage,
      rate: new InboundRate(o.redis, config.inbound.maxPerHour),
      domain: config.inbound.domain,
      messageIdDomain: config.mail.domain,
      ownFrom: config.mail.from,
      authservId: config.inbound.authservId,
    });
    this.listener = new LmtpListener({
      host: config.inbound.lmtpHost,
      port: config.inbound.lmtpPort,
      allow: config.inbound.lmtpAllow,
      domain: config.inbound.domain,
      maxBytes: config.inbound.maxBytes,
      processor,
      metrics: o.metrics,
      logger: o.logger,
    });
  }

  /** Listens for the MTA; resolves once the port is bound. */
  start(): Promise<void> {
    return this.listener.start();
  }

  /**
   * Stops listening and waits (bounded) for mail being processed; mail the MTA could not hand
   * over, or whose answer it did not get, stays in its queue and is offered again.
   */
  stop(): Promise<void> {
    return this.listener.stop();
  }
}
