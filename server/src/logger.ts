import { pino, type Logger } from 'pino';
import type { Config } from '../../runtime/config';
import { logDestination } from '../../runtime/log-destination';

export type { Logger };

/** Structured JSON logs; `component` tells which part of the server wrote the line. */
export function createLogger(config: Pick<Config, 'logLevel'>, component: string): Logger {
  return pino({ level: config.logLevel, base: { component } }, logDestination());
}
