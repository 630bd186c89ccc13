/** Entry point of the broker-auth service (started by infra/ next to the RabbitMQ nodes). */
import { ConfigError, loadConfig } from '../../../shared/config';
import { startBrokerAuthServer } from './broker-auth-server';

async function main(): Promise<void> {
  const server = await startBrokerAuthServer(loadConfig());
  const stop = (): void => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`roomcast broker-auth failed to start: ${err instanceof ConfigError ? err.message : String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
});
