/** `npm run seed`: the demo users and room (seed-demo.ts), printed as JSON. */
import { loadConfig } from '../../../runtime/config';
import { seedDemo } from './seed-demo';

seedDemo(loadConfig()).then(
  (seed) => {
    process.stdout.write(`${JSON.stringify(seed, null, 2)}\n`);
  },
  (err: unknown) => {
    process.stderr.write(`seed failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
