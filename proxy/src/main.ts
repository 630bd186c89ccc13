/** Entry point of the TLS proxy process (started by infra/ in front of the app servers). */
import { ConfigError, loadConfig } from '../../runtime/config';
import { runService } from '../../runtime/lifecycle';
import { createProxy, ProxyError } from './index';

runService(() => createProxy(loadConfig()), { name: 'proxy', explained: (err) => err instanceof ConfigError || err instanceof ProxyError });
