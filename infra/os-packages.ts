/**
 * Debian packages the local services (and later the browser tests) run on. Root installs
 * what is missing; anyone else gets the exact command to run, since a half-provisioned
 * machine fails later with far less helpful errors.
 */
import type { Logger } from './logger';
import { CommandError, isRoot, runChecked, runCommand } from './processes';

/**
 * What `ensureServices` needs: the binaries of every local service, and openssl, which makes
 * the proxy's development certificate and the tests' throwaway certificate authority. Exim
 * comes as exim4-daemon-light: a local relay needs nothing of -heavy's (SQL and LDAP lookups,
 * content scanning, embedded Perl), and both pull in the same exim4-base and exim4-config.
 */
export const SERVICE_PACKAGES: readonly string[] = ['rabbitmq-server', 'postgresql', 'redis-server', 'exim4-daemon-light', 'openssl'];

/** What the integration tests need on top: swaks, the SMTP client the inbound-mail tests send real mail with through Exim. */
export const TEST_PACKAGES: readonly string[] = ['swaks'];

/** What the browser tests need on top: Debian's Chromium, driven by Playwright (never a downloaded browser). */
export const BROWSER_PACKAGES: readonly string[] = ['chromium'];

/** Packages are missing and we are not root, so we cannot install them. */
export class MissingOsPackagesError extends Error {
  override name = 'MissingOsPackagesError';
  readonly code = 'os_packages_missing';
  constructor(readonly packages: readonly string[]) {
    super(
      `missing Debian packages: ${packages.join(', ')}. ` +
        `Run as root: apt-get install -y ${packages.join(' ')}`,
    );
  }
}

/** The subset of `names` that dpkg does not report as fully installed. */
export async function missingOsPackages(names: readonly string[]): Promise<string[]> {
  // One query per name: its exit code and status then need no parsing of package names.
  const checks = await Promise.all(
    names.map(async (name) => {
      const res = await runCommand('dpkg-query', ['-W', '-f=${Status}', name]);
      return res.exitCode === 0 && res.stdout.trim() === 'install ok installed' ? null : name;
    }),
  );
  return checks.filter((n): n is string => n !== null);
}

/** Installs whatever of `names` is missing (as root), or throws MissingOsPackagesError. */
export async function ensureOsPackages(names: readonly string[], log: Logger): Promise<void> {
  const missing = await missingOsPackages(names);
  if (missing.length === 0) return;
  if (!isRoot()) throw new MissingOsPackagesError(missing);

  log.info(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const onLine = (line: string): void => log.info(`  apt: ${line}`);
  await runChecked('apt-get', ['update'], { env, onLine });
  await runChecked('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env, onLine });

  const still = await missingOsPackages(missing);
  if (still.length > 0) throw new CommandError(`apt-get finished but these are still not installed: ${still.join(' ')}`);
}
