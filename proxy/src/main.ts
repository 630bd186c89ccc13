/** Entry point of the TLS proxy process (started by infra/ in front of the app servers). */
import { ConfigError, loadConfig } from '../../shared/config';
import { createProxy, ProxyError } from './index';

async function main(): Promise<void> {
  const proxy = await createProxy(loadConfig());
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    proxy.logger.info({ signal }, 'shutting down');
    proxy.close().then(
      () => process.exit(0),
      (err: unknown) => {
        proxy.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  const known = err instanceof ConfigError || err instanceof ProxyError;
  process.stderr.write(`roomcast proxy failed to start: ${known ? err.message : String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
});
