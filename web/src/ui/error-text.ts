import { ApiError, NetworkError } from '../client/index';

/** What to tell the person about a failure: the server's own words when it answered. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof NetworkError) return 'No connection to the server. Check your network and try again.';
  return 'Something went wrong. Reload the page and try again.';
}
