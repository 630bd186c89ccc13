/**
 * roomcast through HAProxy instead of the proxy: the same system, clients and posts, with a
 * stock load balancer in front. Started for the target and stopped with it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Services } from '../../server/src/services';
import { tlsFiles } from '../../proxy/src/tls-certificate';
import { freePort } from '../../testkit/ports';
import { startHaproxy } from '../lib/haproxy';
import type { Target } from '../lib/target';
import { roomcastTarget, type RoomcastSystem } from './roomcast';

export async function haproxyTarget(services: Services, sys: RoomcastSystem): Promise<Target> {
  const files = tlsFiles(sys.config);
  const haproxy = await startHaproxy({
    port: await freePort(),
    certPem: readFileSync(files.certFile, 'utf8'),
    keyPem: readFileSync(files.keyFile, 'utf8'),
    webStompUrls: sys.config.rabbitmq.nodes.map((n) => n.webStompUrl),
    appUrls: sys.appUrls,
    dir: path.join(sys.config.dataDir, 'bench-haproxy'),
  });
  const target = roomcastTarget(services, sys, { label: `HAProxy ${haproxy.version}`, url: haproxy.url, pidName: 'haproxy', pid: haproxy.pid });
  return {
    ...target,
    async stop() {
      try {
        await target.stop();
      } finally {
        await haproxy.stop();
      }
    },
  };
}
