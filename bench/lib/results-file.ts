/**
 * How every channel benchmark leaves its results: `bench/results/<name>-<time>.json` (the whole
 * record) and `.md` (a title, the machine, an optional sentence on the set-up, and a table of
 * measures), the Markdown also printed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../runtime/config';

export interface BenchReport {
  /** File name prefix: `mail`, `webhooks`, … */
  name: string;
  title: string;
  startedAt: string;
  machine: Record<string, string | number>;
  setup?: string;
  /** [measure, value] rows. */
  rows: [string, string][];
}

export function writeBenchResults(report: BenchReport, record: unknown): void {
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const md = [
    `# ${report.title}, ${report.startedAt}`,
    '',
    `Machine: ${Object.entries(report.machine).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    ...(report.setup ? [report.setup, ''] : []),
    '| measure | value |',
    '|---|---|',
    ...report.rows.map(([measure, value]) => `| ${measure} | ${value} |`),
    '',
  ].join('\n');
  writeFileSync(path.join(dir, `${report.name}-${stamp}.json`), `${JSON.stringify(record, null, 2)}\n`);
  writeFileSync(path.join(dir, `${report.name}-${stamp}.md`), md);
  process.stdout.write(`\n${md}\nresults: bench/results/${report.name}-${stamp}.{json,md}\n`);
}
