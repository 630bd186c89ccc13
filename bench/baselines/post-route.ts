/** The baselines' one HTTP route, `POST /rooms/<room>/messages` with a JSON body; anything else is a 404. */
import type http from 'node:http';

export function roomPostHandler(
  onPost: (room: string, body: Record<string, unknown>, res: http.ServerResponse) => void,
): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    const m = /^\/rooms\/([\w-]+)\/messages$/.exec(req.url ?? '');
    const room = m?.[1];
    if (req.method !== 'POST' || !room) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => onPost(room, JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>, res));
  };
}
