/**
 * The error taxonomy decides what the client does next: stop (fatal), try again later
 * (retriable), or give up on one request (a refusal, neither).
 */
import { describe, expect, it } from 'vitest';
import { ApiError, BrokerError, NetworkError, RoomClientError, isFatal, isRetriable } from '../src/client/errors';

describe('isFatal', () => {
  it.each([
    [401, 'unauthenticated'],
    [401, 'invalid_credentials'],
    [403, 'not_a_member'],
    [404, 'room_not_found'],
  ] as const)('%i %s stops the client', (status, code) => {
    expect(isFatal(new ApiError(status, code, 'x'))).toBe(true);
  });

  it.each([
    [403, 'forbidden'],
    [403, 'instructor_only_kind'],
    [404, 'not_found'],
    [408, 'invalid_request'],
    [429, 'too_many_attempts'],
    [500, 'internal'],
    [503, 'service_unavailable'],
  ] as const)('%i %s does not', (status, code) => {
    expect(isFatal(new ApiError(status, code, 'x'))).toBe(false);
  });

  it('is false for anything that is not an answer from the server', () => {
    for (const err of [new NetworkError('offline'), new BrokerError('broker_refused', 'refused'), new RoomClientError('invalid_options', 'bad'), new Error('x'), 'not_a_member', null, undefined]) {
      expect(isFatal(err)).toBe(false);
    }
  });
});

describe('isRetriable', () => {
  it('is true when there was no answer or the broker connection failed', () => {
    expect(isRetriable(new NetworkError('offline'))).toBe(true);
    expect(isRetriable(new BrokerError('broker_disconnected', 'closed'))).toBe(true);
    expect(isRetriable(new BrokerError('broker_refused', 'refused'))).toBe(true);
  });

  it.each([408, 429, 500, 502, 503, 504, 599])('is true for %i', (status) => {
    expect(isRetriable(new ApiError(status, 'service_unavailable', 'x'))).toBe(true);
  });

  it.each([400, 401, 403, 404, 409, 413, 415, 422])('is false for %i', (status) => {
    expect(isRetriable(new ApiError(status, 'invalid_request', 'x'))).toBe(false);
  });

  it('is false for errors of the client itself and for foreign errors', () => {
    expect(isRetriable(new RoomClientError('invalid_options', 'bad'))).toBe(false);
    expect(isRetriable(new RoomClientError('network', 'a code alone does not make it a network error'))).toBe(false);
    expect(isRetriable(new TypeError('fetch failed'))).toBe(false);
    expect(isRetriable(undefined)).toBe(false);
  });
});

describe('error classes', () => {
  it('ApiError carries status, the server code and message, and Retry-After (null when absent)', () => {
    const err = new ApiError(429, 'too_many_attempts', 'slow down', 30_000);
    expect(err).toBeInstanceOf(RoomClientError);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ name: 'ApiError', status: 429, code: 'too_many_attempts', message: 'slow down', retryAfterMs: 30_000 });
    expect(new ApiError(500, 'internal', 'x').retryAfterMs).toBeNull();
  });

  it('NetworkError has code network and keeps its cause', () => {
    const cause = new TypeError('fetch failed');
    const err = new NetworkError('no answer', cause);
    expect(err).toBeInstanceOf(RoomClientError);
    expect(err).toMatchObject({ name: 'NetworkError', code: 'network', message: 'no answer' });
    expect(err.cause).toBe(cause);
  });

  it('BrokerError has the code it was given', () => {
    expect(new BrokerError('broker_refused', 'access refused')).toMatchObject({ name: 'BrokerError', code: 'broker_refused' });
  });
});
