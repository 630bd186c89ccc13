/** The plain-HTTP port: every request is sent, with its path, to the same host over HTTPS. */
import http from 'node:http';

// A Host header that is a DNS name or an IP literal, with an optional port. Anything else is
// ignored rather than echoed into a Location header.
const HOST = /^(?<name>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d+)?$/i;

/** `httpsPort` is read per request: in tests the TLS port is only known once it listens. */
export function createRedirectServer(fallbackHost: string, httpsPort: () => number): http.Server {
  return http.createServer((req, res) => {
    const name = HOST.exec(req.headers.host ?? '')?.groups?.name ?? fallbackHost;
    const port = httpsPort();
    const target = req.url?.startsWith('/') ? req.url : '/';
    // 308, not 301: a POST sent here by mistake is repeated as a POST, not turned into a GET.
    res.writeHead(308, { location: `https://${name}${port === 443 ? '' : `:${port}`}${target}`, 'content-length': '0', connection: 'close' });
    res.end();
  });
}
