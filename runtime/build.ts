/**
 * `npm run build`: the production build. The processes infra runs (app server, proxy,
 * broker-auth) and infra's own command line, each bundled by esbuild into dist/ as plain
 * JavaScript for Node 20 (dependencies stay in node_modules); `npm run build` builds the web
 * pages (web/dist) first.
 * With ROOMCAST_COMPILED=true, infra runs these with node alone: no TypeScript loader at run
 * time. esbuild rather than tsc: the sources import without file extensions, which Node's ESM
 * loader needs; a bundle has no imports of ours left to resolve.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { repoRoot } from './config';

/** The entries, as paths from the root; each lands at the same path under dist/ with .js. */
export const COMPILED_ENTRIES = ['server/src/main.ts', 'server/src/broker-auth/main.ts', 'proxy/src/main.ts', 'infra/cli.ts'];

const dist = path.join(repoRoot, 'dist');
await rm(dist, { recursive: true, force: true });
await build({
  entryPoints: COMPILED_ENTRIES.map((e) => path.join(repoRoot, e)),
  outbase: repoRoot,
  outdir: dist,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
process.stdout.write(`built ${COMPILED_ENTRIES.length} entries into dist/\n`);
