/** The plain-HTTP port: every request is sent, with its path, to the proxy over HTTPS. */
import http from 'node:http';

// A Host header that is a DNS name or an IP literal, with an optional port.
const HOST = /^(?<name>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d+)?$/i;

/**
 * `origins` are the proxy's public https origins, read per request (in tests the TLS port is
 * only known once it listens). The request goes to the one its Host names, else to the first:
 * an arbitrary Host is never echoed into Location, so nobody can make this port send a
 * browser to another site.
 */
export function createRedirectServer(origins: () => string[]): http.Server {
  return http.createServer((req, res) => {
    const asked = HOST.exec(req.headers.host ?? '')?.groups?.name?.toLowerCase();
    const known = origins();
    const origin = known.find((o) => new URL(o).hostname === asked) ?? known[0] ?? '';
    const target = req.url?.startsWith('/') ? req.url : '/';
    // 308, not 301: a POST sent here by mistake is repeated as a POST, not turned into a GET.
    res.writeHead(308, { location: `${origin}${target}`, 'content-length': '0', connection: 'close' });
    res.end();
  });
}
