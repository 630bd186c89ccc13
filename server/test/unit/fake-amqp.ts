/**
 * Just enough of amqplib's ChannelModel and ConfirmChannel for BrokerConnection: the test holds
 * every publish's callback and answers it (confirm, nack) when it chooses, and decides what the
 * broker sends before a channel's open-ok (a `connection.blocked`, say), as RabbitMQ's frames
 * arrive in order on one socket.
 */
import { EventEmitter } from 'node:events';
import type { ChannelModel, ConfirmChannel } from 'amqplib';

export interface HeldPublish {
  routingKey: string;
  content: Buffer;
  confirm(): void;
  nack(): void;
}

export class FakeConfirmChannel extends EventEmitter {
  readonly published: HeldPublish[] = [];
  closed = false;

  publish(_exchange: string, routingKey: string, content: Buffer, _props: unknown, cb: (err: unknown) => void): boolean {
    if (this.closed) throw new Error('channel closed');
    this.published.push({ routingKey, content, confirm: () => cb(null), nack: () => cb(new Error('nack')) });
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.emit('close');
  }
}

export class FakeChannelModel extends EventEmitter {
  readonly channels: FakeConfirmChannel[] = [];
  /** Run by the next createConfirmChannel before its open-ok resolves: what the broker sent before it. */
  beforeOpenOk: (() => void) | null = null;

  async createConfirmChannel(): Promise<ConfirmChannel> {
    await Promise.resolve();
    const before = this.beforeOpenOk;
    this.beforeOpenOk = null;
    before?.();
    const channel = new FakeConfirmChannel();
    this.channels.push(channel);
    return channel as unknown as ConfirmChannel;
  }

  async close(): Promise<void> {
    this.emit('close');
  }

  get current(): FakeConfirmChannel {
    return this.channels.at(-1) as FakeConfirmChannel;
  }
}

/** A `connect` for BrokerConnection that always hands out `model`. */
export const connectTo = (model: FakeChannelModel) => async (): Promise<ChannelModel> => model as unknown as ChannelModel;
