/**
 * Builds the browser pages into web/dist (git-ignored): one bundle per page, shared code in a
 * common chunk, and the static HTML and CSS. `npm run build:web`; `npm start` and the e2e
 * tests run it first.
 */
import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

const webRoot = path.dirname(fileURLToPath(import.meta.url));
export const webDist = path.join(webRoot, 'dist');

/** How the pages are bundled; web/test/page-bundle.test.ts builds the same in memory. */
export const pageBuild: BuildOptions = {
  entryPoints: {
    learner: path.join(webRoot, 'src/pages/learner-page.ts'),
    instructor: path.join(webRoot, 'src/pages/instructor-console.ts'),
  },
  outdir: webDist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome109', 'firefox115', 'safari15'],
  chunkNames: 'chunks/[name]-[hash]',
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
};

export async function buildWeb(): Promise<void> {
  await rm(webDist, { recursive: true, force: true });
  await build(pageBuild);
  await cp(path.join(webRoot, 'static'), webDist, { recursive: true });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildWeb().then(
    () => process.stdout.write(`web pages built in ${path.relative(process.cwd(), webDist) || webDist}\n`),
    (err: unknown) => {
      process.stderr.write(`web build failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
