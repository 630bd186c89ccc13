/**
 * The certificate the public port serves. Production names its files in the configuration;
 * development gets a self-signed certificate for localhost, 127.0.0.1 and the proxy's own bind
 * address, made once with the `openssl` CLI under `<dataDir>/proxy/` and reused until it nears
 * its end or no longer names that address.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Config } from '../../runtime/config';
import { CertificateError } from './errors';

const run = promisify(execFile);

/** A development certificate this close to expiry is made anew at start-up. */
const RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;
const DEV_VALIDITY_DAYS = 365;

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface TlsMaterial extends TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** True when this start made a new development certificate (a browser must trust it anew). */
  generated: boolean;
}

export function devCertificateFiles(config: Pick<Config, 'dataDir'>): TlsFiles {
  const dir = path.join(config.dataDir, 'proxy');
  return { certFile: path.join(dir, 'dev-cert.pem'), keyFile: path.join(dir, 'dev-key.pem') };
}

/** The files the proxy serves: the configured pair, else the development one. */
export const tlsFiles = (config: Pick<Config, 'dataDir' | 'proxy'>): TlsFiles =>
  config.proxy.tls ? { certFile: config.proxy.tls.cert, keyFile: config.proxy.tls.key } : devCertificateFiles(config);

function readPair(files: TlsFiles, setting: string): { cert: Buffer; key: Buffer } {
  const read = (file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new CertificateError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err}); check ${setting}`, err);
    }
  };
  return { cert: read(files.certFile), key: read(files.keyFile) };
}

/** What the development certificate names: localhost, 127.0.0.1, and the bind address when it is a specific other one. */
function devNames(bindHost: string): { dns: string[]; ips: string[] } {
  const names = { dns: ['localhost'], ips: ['127.0.0.1'] };
  if (['0.0.0.0', '::', '127.0.0.1', 'localhost'].includes(bindHost)) return names;
  if (isIP(bindHost) === 0) names.dns.push(bindHost);
  else names.ips.push(bindHost);
  return names;
}

function usable(certFile: string, names: { dns: string[]; ips: string[] }): boolean {
  if (!existsSync(certFile)) return false;
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    const covers = names.dns.every((d) => cert.checkHost(d) !== undefined) && names.ips.every((ip) => cert.checkIP(ip) !== undefined);
    return covers && Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}

async function generateDevCertificate(files: TlsFiles, names: { dns: string[]; ips: string[] }): Promise<void> {
  mkdirSync(path.dirname(files.certFile), { recursive: true, mode: 0o700 });
  const tmp = { certFile: `${files.certFile}.tmp`, keyFile: `${files.keyFile}.tmp` };
  try {
    // P-256: as trusted as RSA-2048 and several times cheaper per TLS handshake.
    await run(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-days', String(DEV_VALIDITY_DAYS), '-subj', '/CN=localhost',
        '-addext', `subjectAltName=${[...names.dns.map((d) => `DNS:${d}`), ...names.ips.map((ip) => `IP:${ip}`)].join(',')}`,
        '-addext', 'extendedKeyUsage=serverAuth',
        '-keyout', tmp.keyFile, '-out', tmp.certFile,
      ],
      { timeout: 30_000 },
    );
  } catch (err) {
    rmSync(tmp.keyFile, { force: true });
    rmSync(tmp.certFile, { force: true });
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    const why = e.code === 'ENOENT' ? 'openssl is not installed (apt-get install -y openssl)' : (e.stderr?.trim() || e.message);
    throw new CertificateError(`cannot make the development certificate: ${why}`, err);
  }
  chmodSync(tmp.keyFile, 0o600);
  // Key first: a certificate without its key must never be what the next start finds.
  renameSync(tmp.keyFile, files.keyFile);
  renameSync(tmp.certFile, files.certFile);
}

export async function loadTlsMaterial(config: Pick<Config, 'dataDir' | 'proxy'>): Promise<TlsMaterial> {
  const files = tlsFiles(config);
  if (config.proxy.tls) return { ...files, ...readPair(files, 'ROOMCAST_PROXY_TLS_CERT and ROOMCAST_PROXY_TLS_KEY'), generated: false };
  const names = devNames(config.proxy.host);
  const generated = !(usable(files.certFile, names) && existsSync(files.keyFile));
  if (generated) await generateDevCertificate(files, names);
  return { ...files, ...readPair(files, `${path.dirname(files.certFile)} (delete it to make a new certificate)`), generated };
}
