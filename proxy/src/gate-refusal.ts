/**
 * Why the STOMP gate ends a WebSocket. Each reason is a metric label
 * (`roomcast_proxy_stomp_refused_total{reason}`) and appears in the refusal's log line.
 */
export type GateRefusalReason =
  /** No CONNECT (or no answer to it) within the deadline. */
  | 'connect_timeout'
  /** The first STOMP frame was something other than CONNECT or STOMP. */
  | 'connect_first'
  /** A second CONNECT on the same connection. */
  | 'connect_repeated'
  /** The broker answered the CONNECT with an ERROR (bad or expired passcode). */
  | 'login_failed'
  /** SEND, BEGIN, COMMIT, ABORT or an unknown command. */
  | 'command'
  /** A SUBSCRIBE to anything but the caller's room keys or its own instructor queue. */
  | 'destination'
  /** A header the frame may not carry (queue-shaping ones above all), repeated, missing or malformed. */
  | 'header'
  | 'duplicate_subscription'
  | 'too_many_subscriptions'
  | 'frame_too_large'
  /** Not valid WebSocket or STOMP framing. */
  | 'malformed'
  /** A compressed (RSV1) WebSocket frame: no extension is ever negotiated through the proxy. */
  | 'compressed';

/** Thrown by the gate's pure parts; the tunnel turns it into an ERROR frame and a close. */
export class GateRefusal extends Error {
  override name = 'GateRefusal';
  constructor(
    readonly reason: GateRefusalReason,
    message: string,
  ) {
    super(message);
  }
}
