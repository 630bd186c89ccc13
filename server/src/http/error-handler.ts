import type { NextFunction, Request, Response } from 'express';
import type { ErrorBody } from '../../../shared/protocol/errors';
import { AppError, NotFoundError, RateLimitedError, toAppError } from '../errors';
import type { Logger } from '../logger';

/** Errors raised by express.json() (and the http-errors it uses) before any route runs. */
function bodyParserError(err: unknown): AppError | null {
  const e = err as { type?: unknown; status?: unknown; expose?: unknown };
  if (e?.type === 'entity.too.large') return new AppError(413, 'payload_too_large', 'request body is larger than the server accepts');
  if (e?.type === 'entity.parse.failed') return new AppError(400, 'invalid_json', 'request body is not valid JSON');
  // Thrown by our own `verify` (refuseInvalidUtf8); body-parser wraps it and would call it 403.
  if (e?.type === 'entity.verify.failed') return new AppError(400, 'invalid_utf8', 'the request body is not valid UTF-8');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
    return new AppError(415, 'unsupported_media_type', 'unsupported request encoding or charset; send UTF-8 JSON');
  }
  // Any other client error http-errors marks as safe to show: a body that does not inflate
  // (Content-Encoding: gzip over plain bytes), a body shorter than its Content-Length, ...
  if (e?.expose === true && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return new AppError(e.status, 'invalid_request', 'the request body could not be read (check Content-Encoding and Content-Length)');
  }
  return null;
}

export function notFound(req: Request): never {
  throw new NotFoundError('not_found', `no route for ${req.method} ${req.path}`);
}

export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const appErr = bodyParserError(err) ?? toAppError(err);
    if (appErr.status >= 500) {
      logger.error({ err, cause: appErr.cause, reqId: res.locals.reqId, path: req.path }, appErr.message);
    }
    const body: ErrorBody = { error: { code: appErr.code, message: appErr.message } };
    if (appErr.details !== undefined) body.error.details = appErr.details;
    if (appErr.status === 503) res.set('Retry-After', '1');
    if (appErr instanceof RateLimitedError) res.set('Retry-After', String(appErr.retryAfterSeconds));
    res.status(appErr.status).json(body);
  };
}
