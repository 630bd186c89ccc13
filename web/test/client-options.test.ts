/** The room client's options: persistUnsent is checked at construction like every other option. */
import { describe, expect, it } from 'vitest';
import { settingsOf, type RoomClientOptions } from '../src/client/client-options';
import { RoomcastApi } from '../src/client/index';
import { FakeStorage } from './fake-room-server';

const base = (): RoomClientOptions => ({
  api: new RoomcastApi({ baseUrl: 'https://class.test' }),
  roomId: 'room-1',
  stompUrls: ['wss://class.test/ws'],
  webSocketFactory: () => {
    throw new Error('not used');
  },
});

describe('persistUnsent option', () => {
  it('defaults to memory only', () => {
    expect(settingsOf(base()).persistUnsent).toBeNull();
  });

  it('takes a storage getter and the user id', () => {
    const storage = new FakeStorage();
    const persist = { storage: () => storage, userId: 'u-1' };
    expect(settingsOf({ ...base(), persistUnsent: persist }).persistUnsent).toBe(persist);
  });

  it.each([
    ['a storage object instead of a getter', { storage: new FakeStorage(), userId: 'u-1' }],
    ['no user id', { storage: () => new FakeStorage(), userId: '' }],
  ])('refuses %s', (_what, persist) => {
    expect(() => settingsOf({ ...base(), persistUnsent: persist as never })).toThrow(expect.objectContaining({ code: 'invalid_options' }));
  });
});
