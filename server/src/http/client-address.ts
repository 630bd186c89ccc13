import type { Request } from 'express';

/** The caller's address as the proxy saw it (`trust proxy` takes X-Forwarded-For from loopback only). */
export const clientAddress = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? 'unknown';
