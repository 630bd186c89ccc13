/**
 * Child process: one app server (its own process, so its memory is measured alone). Answers
 * `{type: 'memory'}` with its memory after a full garbage collection and its open streams.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadConfig } from '../../runtime/config';
import { startAppServer } from '../../server/src/app';
import { reply, workerMain } from '../../testkit/workers';

export interface AppMemory {
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  streams: number;
  /** The event loop's delay since the previous answer, p99 (ms): how late the server got to its work. */
  loopDelayP99Ms: number;
}

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

workerMain<Record<string, never>, Record<string, never>>(async (_params, stopped, ready) => {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn' });
  const app = await startAppServer(config, { port: 0, mail: false });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  process.on('message', (m: { type: string }) => {
    if (m.type !== 'memory') return;
    gc();
    gc();
    const mu = process.memoryUsage();
    const loopDelayP99Ms = Math.round(loop.percentile(99) / 1e4) / 100;
    loop.reset();
    reply({ rssBytes: mu.rss, heapUsedBytes: mu.heapUsed, externalBytes: mu.external, streams: app.streams.size, loopDelayP99Ms } satisfies AppMemory);
  });
  ready({ url: app.url, pid: process.pid });
  await stopped;
  await app.close();
  return {};
});
