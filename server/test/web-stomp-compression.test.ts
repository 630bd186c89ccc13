import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { testConfig } from '../../testkit/test-config';
import { webStompUrl } from '../../testkit/stomp';

/** What a node answers to a client that offers permessage-deflate, as browsers do. */
function negotiatedExtensions(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['v12.stomp'], { perMessageDeflate: true });
    ws.once('open', () => {
      resolve(ws.extensions);
      ws.close();
    });
    ws.once('error', reject);
  });
}

describe('Web-STOMP', () => {
  // A compressed connection holds two zlib streams on the broker (about 300 KiB) and costs a
  // deflate of every frame for every subscriber: see docs/decisions/0006.
  it('declines WebSocket compression on every node', async () => {
    const config = testConfig();
    const answers = await Promise.all(config.rabbitmq.nodes.map((_n, i) => negotiatedExtensions(webStompUrl(config, i))));
    expect(answers).toEqual(config.rabbitmq.nodes.map(() => ''));
  });
});
