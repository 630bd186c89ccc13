/**
 * A throwaway certificate authority and a server certificate it signed, for localhost and
 * 127.0.0.1, made with the openssl CLI in a temporary directory for one test file.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const openssl = (args: string[], cwd: string) => promisify(execFile)('openssl', args, { cwd, timeout: 30_000 });

export interface TestCertificates {
  dir: string;
  /** The CA certificate a client must trust. */
  ca: Buffer;
  certFile: string;
  keyFile: string;
  remove(): void;
}

export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-proxy-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=roomcast test CA', '-keyout', 'ca-key.pem', '-out', 'ca.pem'], dir);
  await openssl(['req', '-new', ...ec, '-subj', '/CN=localhost', '-keyout', 'server-key.pem', '-out', 'server.csr'], dir);
  writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '2', '-extfile', 'server.ext', '-out', 'server.pem'],
    dir,
  );
  return {
    dir,
    ca: readFileSync(path.join(dir, 'ca.pem')),
    certFile: path.join(dir, 'server.pem'),
    keyFile: path.join(dir, 'server-key.pem'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
