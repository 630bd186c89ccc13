/**
 * The operators' API (`/api/admin/...`): off unless ROOMCAST_ADMIN_TOKEN is set (404
 * `admin_disabled`), then only with that token as a bearer (401 otherwise), compared in constant time.
 */
import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError } from '../errors';

export function requireAdmin(adminToken: string | null): RequestHandler {
  return (req, _res, next) => {
    if (!adminToken) throw new AppError(404, 'admin_disabled', 'the operators\u2019 API is off; set ROOMCAST_ADMIN_TOKEN to turn it on');
    const given = Buffer.from(/^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '');
    const want = Buffer.from(adminToken);
    if (given.length !== want.length || !timingSafeEqual(given, want)) throw new AppError(401, 'unauthenticated', 'the operators\u2019 API needs Authorization: Bearer <ROOMCAST_ADMIN_TOKEN>');
    next();
  };
}
