/**
 * Refuses JSON that parses but that the rest of the server cannot keep exactly, before any
 * route sees it. Each refusal is a 4xx with its own code, never a 500 from deeper down:
 *
 * - U+0000 in a string or key: Postgres `text` and `jsonb` cannot store it (SQLSTATE 22021/22P05).
 * - A lone UTF-16 surrogate (`"\ud800"`): JSON.parse accepts it, but it is no Unicode text;
 *   `jsonb` refuses it, and a UTF-8 encoder would silently turn it into U+FFFD.
 * - A number JSON.parse turned into ±Infinity (`1e400`): JSON.stringify would write `null`.
 * - Nesting deeper than MAX_JSON_DEPTH: JSON.stringify, zod and the pg driver recurse, and a few
 *   thousand levels fit in 16 KiB and overflow the stack.
 *
 * The walk itself is iterative (an explicit stack), so no body can overflow it; it stops at
 * the first problem. Everything it lets through round-trips through JSON.stringify and
 * Postgres jsonb unchanged (up to jsonb's key order), `__proto__` keys included: JSON.parse
 * makes them own properties and nothing here copies objects.
 */
import { isUtf8 } from 'node:buffer';
import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../errors';

/**
 * express.json's `verify`: the raw body must be valid UTF-8. The decoder would otherwise turn
 * each bad byte into U+FFFD, and the server would store something other than what was sent.
 */
export function refuseInvalidUtf8(_req: unknown, _res: unknown, body: Buffer): void {
  if (!isUtf8(body)) throw new AppError(400, 'invalid_utf8', 'the request body is not valid UTF-8');
}

/** Objects and arrays nested deeper than this are refused; a message body needs a handful. */
export const MAX_JSON_DEPTH = 32;

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

interface Frame {
  value: unknown;
  depth: number;
  path: string;
}

const childPath = (parent: string, key: string | number): string =>
  typeof key === 'number' ? `${parent}[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? (parent ? `${parent}.${key}` : key) : `${parent}[${JSON.stringify(key)}]`;

const shown = (path: string): string => path || 'the request body';

function checkString(s: string, path: string, what: 'string' | 'key'): void {
  if (s.includes('\u0000')) {
    throw new AppError(400, 'nul_character', `${what} at ${shown(path)} contains U+0000, which cannot be stored`);
  }
  if (LONE_SURROGATE.test(s)) {
    throw new AppError(400, 'lone_surrogate', `${what} at ${shown(path)} contains a lone UTF-16 surrogate (not Unicode text)`);
  }
}

/**
 * Throws the first reason `value` (a JSON.parse result) cannot be kept exactly; returns its
 * nesting depth otherwise (a scalar is 0, `{}` is 1).
 */
export function checkJson(value: unknown, maxDepth = MAX_JSON_DEPTH): number {
  let deepest = 0;
  const stack: Frame[] = [{ value, depth: 0, path: '' }];
  for (let frame = stack.pop(); frame; frame = stack.pop()) {
    const { value: v, depth, path } = frame;
    if (typeof v === 'string') {
      checkString(v, path, 'string');
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new AppError(400, 'number_out_of_range', `number at ${shown(path)} is beyond the range of a double`);
    } else if (v !== null && typeof v === 'object') {
      const inner = depth + 1;
      if (inner > maxDepth) {
        throw new AppError(413, 'json_too_deep', `JSON nested deeper than ${maxDepth} levels at ${shown(path)}`);
      }
      deepest = Math.max(deepest, inner);
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], depth: inner, path: childPath(path, i) });
      } else {
        for (const key of Object.keys(v)) {
          const at = childPath(path, key);
          checkString(key, at, 'key');
          stack.push({ value: (v as Record<string, unknown>)[key], depth: inner, path: at });
        }
      }
    }
  }
  return deepest;
}

/** Methods whose request body the API reads. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * After express.json(): a request that carries a body must carry JSON (415 otherwise, rather
 * than a confusing "expected object" once the body was skipped), and the parsed body must pass
 * `checkJson`.
 */
export function jsonGuard() {
  return (req: Request, _res: Response, next: NextFunction): void => {
    // An empty body (logout, broker-token: fetch sends Content-Length: 0) needs no type.
    const hasBody = req.get('transfer-encoding') !== undefined || Number(req.get('content-length') ?? 0) > 0;
    if (BODY_METHODS.has(req.method) && hasBody && !req.is('application/json')) {
      throw new AppError(415, 'unsupported_media_type', 'send the request body as Content-Type: application/json');
    }
    if (req.body !== undefined) checkJson(req.body);
    next();
  };
}
