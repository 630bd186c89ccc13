/**
 * Drives one person's roomcast page in its own browser context, the way that person would:
 * log in, open the room, type, read what is shown.
 */
import { expect, type Browser, type BrowserContext, type Locator, type Page } from '@playwright/test';
import { PASSWORD, type TestUser } from '../../testkit/harness';
import type { Target } from './target';

export interface ShownMessage {
  id: string;
  seq: number;
  kind: string;
  audience: string;
  text: string;
  status: string | null;
}

export interface OpenOptions {
  /** Name in screenshots and failure messages. */
  name: string;
  /** Which page: the learner room page or the instructor console. */
  page: 'learner' | 'instructor';
  /** Open this room after logging in; without one the room picker shows. */
  roomId?: string;
}

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

/**
 * Runs in the page before its script: points it at the test's broker URLs and installs the
 * client's WebSocket-factory seam with a switch to cut the connection. While cut, new sockets
 * go where nothing listens, so reconnects fail as they would with the network down.
 */
function installPageSettings(stompUrls: string[] | null): void {
  const sockets = new Set<WebSocket>();
  let down = false;
  const w = window as any;
  w.roomcastNet = {
    /** Every URL the page opened a broker socket to, in order. */
    opened: [] as string[],
    /** Every connection state the page showed, in order (recorded from the status element). */
    states: [] as string[],
    cut(): void {
      down = true;
      for (const s of sockets) s.close();
    },
    restore(): void {
      down = false;
    },
  };
  w.roomcastSettings = {
    ...(stompUrls ? { stompUrls } : {}),
    webSocketFactory(url: string, protocols: string[]): WebSocket {
      const ws = new WebSocket(down ? 'ws://127.0.0.1:9/ws' : url, protocols);
      w.roomcastNet.opened.push(ws.url);
      sockets.add(ws);
      ws.addEventListener('close', () => sockets.delete(ws));
      return ws;
    },
  };
  document.addEventListener('DOMContentLoaded', () => {
    const status = document.getElementById('connection');
    if (!status) return;
    new MutationObserver(() => w.roomcastNet.states.push(status.dataset.state)).observe(status, { attributeFilter: ['data-state'] });
  });
}

export class RoomPageDriver {
  private constructor(
    readonly name: string,
    readonly context: BrowserContext,
    readonly page: Page,
  ) {}

  static async open(browser: Browser, target: Target, user: TestUser, options: OpenOptions): Promise<RoomPageDriver> {
    const context = await browser.newContext({
      baseURL: target.baseURL,
      viewport: options.page === 'learner' ? PHONE : DESKTOP,
      ignoreHTTPSErrors: target.ignoreHTTPSErrors,
    });
    await context.addInitScript(installPageSettings, target.stompUrls);
    const driver = new RoomPageDriver(options.name, context, await context.newPage());
    const file = options.page === 'learner' ? '/index.html' : '/instructor.html';
    await driver.page.goto(options.roomId ? `${file}#room=${options.roomId}` : file);
    await driver.page.getByLabel('Username').fill(user.username);
    await driver.page.getByLabel('Password').fill(PASSWORD);
    await driver.page.getByRole('button', { name: 'Log in' }).click();
    if (options.roomId) await driver.expectLive();
    return driver;
  }

  /** Waits until the page says it is connected and caught up. */
  async expectLive(): Promise<void> {
    await expect(this.page.locator('#connection'), `${this.name} goes live`).toHaveAttribute('data-state', 'live');
  }

  /** Types a message and presses Enter; `to` is a value of the "To" menu (default: everyone). */
  async say(text: string, to = 'everyone'): Promise<void> {
    await this.page.locator('#audience').selectOption(to);
    await this.page.locator('#message-text').fill(text);
    await this.page.locator('#message-text').press('Enter');
  }

  /** One of this person's messages the server has not stored (being sent, or refused), by its text. */
  unsent(text: string): Locator {
    return this.page.locator('#pending > li', { hasText: text });
  }

  /** The room's messages as shown, top to bottom. */
  shown(): Promise<ShownMessage[]> {
    return this.page.locator('#messages > li').evaluateAll((items) =>
      items.map((li) => {
        const d = (li as HTMLElement).dataset;
        return {
          id: d.id ?? '',
          seq: Number(d.seq),
          kind: d.kind ?? '',
          audience: d.audience ?? '',
          text: li.querySelector('.msg-text')?.textContent ?? '',
          status: d.status ?? null,
        };
      }),
    );
  }

  async texts(): Promise<string[]> {
    return (await this.shown()).map((m) => m.text);
  }

  /** Waits until every text is shown (in any order); `timeout` defaults to the config's expect timeout. */
  async expectToShow(texts: string[], timeout?: number): Promise<void> {
    const missing = async (): Promise<string[]> => {
      const shown = await this.texts();
      return texts.filter((t) => !shown.includes(t));
    };
    await expect.poll(missing, { message: `${this.name} shows ${texts.join(', ')}`, ...(timeout ? { timeout } : {}) }).toEqual([]);
  }

  /** Connection states the page has shown so far, oldest first. */
  statesSeen(): Promise<string[]> {
    return this.page.evaluate(() => [...(window as any).roomcastNet.states] as string[]);
  }

  /** URLs of every broker socket the page opened so far. */
  socketsOpened(): Promise<string[]> {
    return this.page.evaluate(() => [...(window as any).roomcastNet.opened] as string[]);
  }

  /** The network goes away: HTTP fails and the broker socket is closed; reconnects fail until `restoreNetwork`. */
  async cutNetwork(): Promise<void> {
    // Sockets first, while the network still carries their close handshake: offline, Chromium
    // sends no Close frame and gets no reply, so a socket hangs in CLOSING until the STOMP
    // heart-beat gives up (20 s or more, seen in CI) and the page stays "live" meanwhile.
    await this.page.evaluate(() => (window as any).roomcastNet.cut());
    await this.context.setOffline(true);
  }

  async restoreNetwork(): Promise<void> {
    await this.page.evaluate(() => (window as any).roomcastNet.restore());
    await this.context.setOffline(false);
  }
}

/** Every message once, in seq order, and the expected texts in exactly this order. */
export function expectOrderedOnce(shown: ShownMessage[], expectedTexts: string[], who: string): void {
  const ids = shown.map((m) => m.id);
  expect(new Set(ids).size, `${who}: no message shown twice`).toBe(ids.length);
  const seqs = shown.map((m) => m.seq);
  expect(seqs, `${who}: shown in seq order`).toEqual([...seqs].sort((a, b) => a - b));
  const wanted = new Set(expectedTexts);
  expect(shown.map((m) => m.text).filter((t) => wanted.has(t)), `${who}: every expected message, in order`).toEqual(expectedTexts);
}
