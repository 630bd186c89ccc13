/**
 * Broker tokens (STOMP CONNECT passcodes). Each is short-lived and checked only at CONNECT,
 * so every (re)connect asks for a fresh one. While connected, a spare is renewed before the
 * current one expires: if the app server is unreachable at the moment the broker connection
 * drops, the client can still reconnect with the spare.
 */
import type { BrokerToken } from '../../../shared/protocol/messages';
import type { RoomcastApi } from './api';
import { isFatal } from './errors';

/** Renew when this share of a token's lifetime has passed. */
const RENEW_AT = 0.8;
/** A spare is only used while it has at least this long to live (the CONNECT takes time). */
const SPARE_MARGIN_MS = 5_000;
/** Renewal retry after a failed renewal. */
const RETRY_MS = 5_000;

export class BrokerTokens {
  private spare: BrokerToken | null = null;
  private renewing = false;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly api: RoomcastApi) {}

  /** A fresh token for a CONNECT; the spare when the app server cannot be reached and it is still valid. */
  async forConnect(): Promise<BrokerToken> {
    try {
      return this.keep(await this.api.brokerToken());
    } catch (err) {
      if (!isFatal(err) && this.spare && this.remainingMs(this.spare) > SPARE_MARGIN_MS) return this.spare;
      throw err;
    }
  }

  /** Keeps renewing the spare until `stop`. */
  startRenewal(): void {
    this.renewing = true;
    this.scheduleRenewal();
  }

  stop(): void {
    this.renewing = false;
    clearTimeout(this.renewTimer);
  }

  private keep(token: BrokerToken): BrokerToken {
    this.spare = token;
    if (this.renewing) this.scheduleRenewal();
    return token;
  }

  private scheduleRenewal(): void {
    clearTimeout(this.renewTimer);
    const lifetime = this.spare ? this.remainingMs(this.spare) : 0;
    this.renewTimer = setTimeout(() => this.renew(), Math.max(RETRY_MS, lifetime * RENEW_AT));
  }

  private renew(): void {
    this.api.brokerToken().then(
      (token) => this.keep(token),
      () => {
        // Keep the old spare while it lasts; try again shortly. A connect may have scheduled a
        // renewal meanwhile: one timer only, or stop() could not cancel the other.
        if (!this.renewing) return;
        clearTimeout(this.renewTimer);
        this.renewTimer = setTimeout(() => this.renew(), RETRY_MS);
      },
    );
  }

  private remainingMs(token: BrokerToken): number {
    return Date.parse(token.expiresAt) - Date.now();
  }
}
