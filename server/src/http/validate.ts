import type { z } from 'zod';
import { ValidationError } from '../errors';

/** Parses `value` with `schema`, or throws a 400 that lists each problem by path. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, what = 'request body'): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  const summary = problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
  throw new ValidationError(`invalid ${what}: ${summary}`, problems);
}
