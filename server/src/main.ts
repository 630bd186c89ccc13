/** Entry point of one app server process. */
import { ConfigError, loadConfig } from '../../runtime/config';
import { DependencyError } from './dependencies';
import { runService } from '../../runtime/lifecycle';
import { startAppServer } from './app';

// Each app server process listens for inbound mail on its own LMTP port (infra/app-servers.ts sets it).
runService(() => startAppServer(loadConfig(), { inboundMail: true }), { name: 'app server', explained: (err) => err instanceof ConfigError || err instanceof DependencyError });
