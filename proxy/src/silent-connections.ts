/**
 * Connections that complete their TLS handshake and then say nothing. Node's HTTP server keeps
 * such a connection open indefinitely (its header timeout starts with a request), so each would
 * hold a descriptor, and a place in its address's share, for as long as its client likes.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';

/**
 * Drops a connection that has not begun its first request `ms` after its handshake. Once a
 * request or an upgrade arrives the timer is gone: later idleness is the keep-alive timeout's
 * and the WebSocket idle timeout's business.
 */
export function dropSilentConnections(server: http.Server, ms: number): void {
  const waiting = new WeakMap<Duplex, () => void>();
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    const drop = (): void => {
      socket.destroy();
    };
    waiting.set(socket, drop);
    socket.setTimeout(ms);
    socket.once('timeout', drop);
  });
  const spoke = (socket: Duplex): void => {
    const drop = waiting.get(socket);
    if (!drop) return;
    waiting.delete(socket);
    socket.off('timeout', drop);
    (socket as tls.TLSSocket).setTimeout(0);
  };
  // Registered before the handlers that take over the socket (http-proxy, the tunnels).
  server.prependListener('request', (req: http.IncomingMessage) => spoke(req.socket));
  server.prependListener('upgrade', (req: http.IncomingMessage, socket: Duplex) => spoke(socket));
}
