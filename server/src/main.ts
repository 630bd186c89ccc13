/** Entry point of one app server process. */
import { ConfigError, loadConfig } from '../../runtime/config';
import { runService } from '../../runtime/lifecycle';
import { startAppServer } from './app';

runService(() => startAppServer(loadConfig()), { name: 'app server', explained: (err) => err instanceof ConfigError });
