/** The client's event emitter: order, removal, and a broken listener that must not stop the client. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Emitter } from '../src/client/emitter';

interface Events {
  message: [text: string, n: number];
  state: [state: string];
}

/** `emit` is protected: the client emits, pages listen. */
class TestEmitter extends Emitter<Events> {
  fire<K extends keyof Events>(event: K, ...args: Events[K]): void {
    this.emit(event, ...args);
  }
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('Emitter', () => {
  it('calls each listener of the event with its arguments, in the order they were added', () => {
    const e = new TestEmitter();
    const calls: string[] = [];
    e.on('message', (text, n) => calls.push(`a:${text}:${n}`));
    e.on('message', (text, n) => calls.push(`b:${text}:${n}`));
    e.on('state', (s) => calls.push(`state:${s}`));
    e.fire('message', 'hi', 1);
    expect(calls).toEqual(['a:hi:1', 'b:hi:1']);
  });

  it('does nothing for an event nobody listens to', () => {
    expect(() => new TestEmitter().fire('state', 'live')).not.toThrow();
  });

  it('removes exactly the listener whose remover is called; calling it again is harmless', () => {
    const e = new TestEmitter();
    const a = vi.fn();
    const b = vi.fn();
    const offA = e.on('state', a);
    e.on('state', b);
    offA();
    offA();
    e.fire('state', 'live');
    expect(a).not.toHaveBeenCalled();
    expect(b).toHaveBeenCalledWith('live');
  });

  it('registers the same function once however often it is added', () => {
    const e = new TestEmitter();
    const a = vi.fn();
    e.on('state', a);
    const off = e.on('state', a);
    e.fire('state', 'live');
    expect(a).toHaveBeenCalledTimes(1);
    off();
    e.fire('state', 'offline');
    expect(a).toHaveBeenCalledTimes(1);
  });

  it('does not call a listener added while the event is being emitted until the next emit', () => {
    const e = new TestEmitter();
    const late = vi.fn();
    e.on('state', () => {
      e.on('state', late);
    });
    e.fire('state', 'connecting');
    expect(late).not.toHaveBeenCalled();
    e.fire('state', 'live');
    expect(late).toHaveBeenCalledWith('live');
  });

  it('goes on to the other listeners when one throws, and rethrows its error outside the emit', () => {
    const e = new TestEmitter();
    const boom = new Error('a page bug');
    const after = vi.fn();
    e.on('state', () => {
      throw boom;
    });
    e.on('state', after);
    expect(() => e.fire('state', 'live')).not.toThrow();
    expect(after).toHaveBeenCalledWith('live');
    // Thrown from a timer, where an uncaught error is reported (window.onerror, the console).
    expect(() => vi.runAllTimers()).toThrow(boom);
  });
});
