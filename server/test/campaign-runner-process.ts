/**
 * A campaign runner in a process of its own, for campaigns.test.ts to kill with SIGKILL: sends
 * the running campaigns of the test profile's database through the test Exim, as an app
 * server's runner does. Its settings come as JSON in argv[2].
 */
import { createPool } from '../src/db/pool';
import { createLogger } from '../src/logger';
import { testConfig } from '../../testkit/test-config';
import { campaignRunner } from '../../testkit/campaign-runner';

const config = testConfig(JSON.parse(process.argv[2] ?? '{}') as Record<string, string>);
const campaigns = await campaignRunner(config, createPool(config, () => undefined), createLogger(config, 'campaign-runner'));
campaigns.start();
process.send?.({ ready: true });
