/**
 * The TLS proxy's public entry: `createProxy` starts one (main.ts runs it as a process; tests
 * start it in-process on port 0), and the certificate helpers tell infra what it serves.
 */
export { configuredUpstreams, createProxy, publicUrl, type Proxy, type ProxyOptions, type ProxyPorts, type UpstreamUrls } from './proxy';
export { CertificateError, ListenError, ProxyError, type ProxyErrorCode } from './errors';
export { devCertificateFiles, tlsFiles, type TlsFiles } from './tls-certificate';
export type { UpstreamKind, UpstreamSnapshot, UpstreamState } from './upstreams';
