import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { pageBuild } from '../build';

/**
 * The pages' bundle, built in memory exactly as `npm run build:web` builds it. Its size is what
 * every learner downloads on a school's network; the protocol's zod schemas (the API's
 * description) once dragged all of zod into it, 450 KB, without any test noticing.
 */
describe('the pages bundle', () => {
  it('stays small and carries no server-only library', async () => {
    const result = await build({ ...pageBuild, write: false, metafile: true, sourcemap: false, logLevel: 'silent' });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((f) => /node_modules\/(zod|pg|amqplib|express|ioredis|pino)\//.test(f))).toEqual([]);
    const jsBytes = result.outputFiles.filter((f) => f.path.endsWith('.js')).reduce((n, f) => n + f.contents.byteLength, 0);
    expect(jsBytes).toBeLessThan(150 * 1024);
  });
});
