import type { z } from 'zod';
import { ValidationError } from '../errors';

type Issue = z.core.$ZodIssue;

/** The value at `path` in `value`, or undefined when any step of it is missing. */
function at(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

const join = (path: readonly PropertyKey[]): string => path.map(String).join('.');

/**
 * One issue as people read it: a missing field is "required" (zod says "expected string, received
 * undefined"), and each unknown key is a problem at its own path.
 */
function problemsOf(issue: Issue, value: unknown): { path: string; message: string }[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: join([...issue.path, key]), message: 'unrecognized key: not allowed' }));
  }
  // zod 4 gives the input only with `reportInput`; the value at the path covers coerced fields (NaN) too.
  const missing = issue.code === 'invalid_type' && (('input' in issue && issue.input === undefined) || at(value, issue.path) === undefined);
  return [{ path: join(issue.path), message: missing ? 'required' : issue.message }];
}

/** Parses `value` with `schema`, or throws a 400 that lists each problem by path. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, what = 'request body'): z.infer<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((i) => problemsOf(i, value));
  const summary = problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
  throw new ValidationError(`invalid ${what}: ${summary}`, problems);
}
