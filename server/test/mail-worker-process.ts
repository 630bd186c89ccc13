/**
 * A mail worker in a process of its own, for mail-crash.test.ts to kill: sends the 'mail'
 * queue of the test profile's database through the test Exim, as an app server's sender does.
 */
import { createPool } from '../src/db/pool';
import { createLogger } from '../src/logger';
import { testConfig } from '../../testkit/test-config';
import { mailSender } from './mail-sender-fixture';

const config = testConfig();
const sender = await mailSender(config, createPool(config, () => undefined), createLogger(config, 'mail-worker'));
sender.worker.start();
process.send?.({ ready: true });
