/**
 * A worker process for job-queue.test.ts to kill: claims one job of the queue named in argv
 * with the lease given, reports its id over IPC, then hangs as a worker stuck mid-job does.
 */
import { createPool } from '../src/db/pool';
import { JobQueue } from '../src/work/job-queue';
import { testConfig } from '../../testkit/test-config';

const [queue = '', leaseMs = '0'] = process.argv.slice(2);
const pool = createPool(testConfig(), () => undefined);
const [job] = await new JobQueue(pool, queue).claim(1, Number(leaseMs));
process.send?.({ claimed: job?.id ?? null });
setInterval(() => undefined, 60_000);
