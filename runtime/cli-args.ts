/**
 * Options of the project's command-line scripts (bench, chaos). `--help` prints the usage; an
 * unknown option or a bad value ends the script with one line saying what is wrong, the usage,
 * and exit code 2, instead of a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Cli<O extends Options> {
  values: ReturnType<typeof parseArgs<{ options: O }>>['values'];
  /** Ends the script: `message`, then the usage, exit code 2. */
  fail(message: string): never;
  /** The option's value as an integer in [min, max], or fail(). */
  integer(name: keyof O & string, min: number, max: number): number;
}

export function parseCli<O extends Options>(options: O, usage: string, argv: string[] = process.argv.slice(2)): Cli<O> {
  const fail = (message: string): never => {
    process.stderr.write(`error: ${message}\n\n${usage.trim()}\n`);
    process.exit(2);
  };
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage.trim()}\n`);
    process.exit(0);
  }
  let values: Cli<O>['values'];
  try {
    values = parseArgs({ args: argv, options }).values;
  } catch (err) {
    return fail((err as Error).message);
  }
  const integer = (name: keyof O & string, min: number, max: number): number => {
    const raw = (values as Record<string, unknown>)[name];
    const n = Number(raw);
    if (typeof raw !== 'string' || !Number.isInteger(n) || n < min || n > max) {
      return fail(`--${name} must be an integer from ${min} to ${max}, got ${String(raw)}`);
    }
    return n;
  };
  return { values, fail, integer };
}
