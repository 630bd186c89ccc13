/** Entry point of the broker-auth service (started by infra/ next to the RabbitMQ nodes). */
import { ConfigError, loadConfig } from '../../../runtime/config';
import { runService } from '../../../runtime/lifecycle';
import { DependencyError } from '../dependencies';
import { startBrokerAuthServer } from './broker-auth-server';

runService(() => startBrokerAuthServer(loadConfig()), { name: 'broker-auth', explained: (err) => err instanceof ConfigError || err instanceof DependencyError });
