/**
 * The client-to-broker half of a tunnel, decoded: WebSocket frames, then the STOMP frames in
 * their payloads, each checked by the session policy. Allowed bytes leave exactly as they
 * came; a WebSocket frame is held back while a STOMP head it carries is still incomplete, so
 * no part of a refused frame ever reaches the broker. Pure: the tunnel feeds it chunks and
 * writes out what it returns.
 */
import { GateRefusal } from './gate-refusal';
import { StompStreamReader } from './stomp-frames';
import { StompSessionPolicy } from './stomp-policy';
import { ClientFrameReader, isDataFrame } from './websocket-frames';

export interface GateLimits {
  /** Largest STOMP frame, and largest WebSocket frame payload, a client may send. */
  maxFrameBytes: number;
  maxSubscriptions: number;
}

export class ClientStreamGate {
  private readonly frames: ClientFrameReader;
  private readonly stomp: StompStreamReader;
  readonly session: StompSessionPolicy;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Held bytes include WebSocket framing: many tiny fragments of one head may take this much. */
  private readonly maxHeldBytes: number;

  constructor(limits: GateLimits) {
    this.frames = new ClientFrameReader(limits.maxFrameBytes);
    this.stomp = new StompStreamReader(limits.maxFrameBytes);
    this.session = new StompSessionPolicy({ maxSubscriptions: limits.maxSubscriptions });
    this.maxHeldBytes = 2 * limits.maxFrameBytes;
  }

  /** The user id the client connected as, once its CONNECT has passed. */
  get login(): string | null {
    return this.session.login;
  }

  /** Takes bytes from the client; returns those to forward now. Throws a GateRefusal. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    for (const frame of this.frames.push(chunk)) {
      this.held.push(frame.raw);
      this.heldBytes += frame.raw.length;
      if (isDataFrame(frame)) for (const head of this.stomp.push(frame.payload)) this.session.check(head);
      if (!this.stomp.inHead) {
        out.push(...this.held);
        this.held = [];
        this.heldBytes = 0;
      } else if (this.heldBytes > this.maxHeldBytes) {
        throw new GateRefusal('frame_too_large', 'STOMP frame head spread over too many WebSocket frames');
      }
    }
    return out;
  }
}
