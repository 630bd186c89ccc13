/**
 * What the learner page and the instructor console share: log in, pick or join a room, then
 * show it live through the client library. Each page adds its composer and extras in `setup`.
 */
import type { RoomPresence } from '../../../shared/protocol/presence';
import type { Role } from '../../../shared/protocol/messages';
import { ApiError, RoomClient, clearUnsent, type ConnectionState, type OutgoingRequest, type RoomcastApi, type RoomDetails } from '../client/index';
import { required, showView } from './dom';
import { errorText } from './error-text';
import { askLogin } from './login-view';
import { MemberNames } from './member-names';
import { mountInteractionPanel } from './interaction-panel';
import { MessageView, type MessageDecorator } from './message-view';
import { readPageSettings } from './page-settings';
import { pickRoom, rememberRoom, roomFromAddress } from './room-picker';
import { clearSession, loadSession, pageApi, type StoredSession } from './session';

export interface RoomPage {
  api: RoomcastApi;
  session: StoredSession;
  details: RoomDetails;
  client: RoomClient;
  names: MemberNames;
}

export interface PageHooks {
  decorate?: MessageDecorator;
  onPresence?(presence: RoomPresence): void;
  /** Puts a refused message back in the composer (text and recipient) to be edited and sent as a new message. */
  edit(request: OutgoingRequest): void;
}

export interface RoomPageOptions {
  /** The role this page is for; a member with another role is sent to the right page. */
  role: Role;
  /** The page for the other role, e.g. `instructor.html`. */
  otherPage: string;
  /** Adds the page's own parts once the room is known; runs before the client starts. */
  setup(page: RoomPage): PageHooks;
}

const STATE_TEXT: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  resyncing: 'Catching up…',
  live: 'Live',
  offline: 'Offline, reconnecting…',
};

export async function bootRoomPage(options: RoomPageOptions): Promise<void> {
  // Another room typed into the address (or a link followed): start over with it.
  window.addEventListener('hashchange', () => window.location.reload());
  let session = loadSession();
  const api = pageApi(session);
  const logout = required<HTMLButtonElement>('logout');
  logout.onclick = () => {
    // A shared computer: what this user left unsent is not for the next person at this browser.
    if (session) forgetUnsent(session.user.id);
    void api
      .logout()
      .catch(() => undefined)
      .finally(() => {
        clearSession();
        rememberRoom(null);
        window.location.reload();
      });
  };
  let notice = '';
  for (;;) {
    if (!session) session = await askLogin(api);
    required('whoami').textContent = session.user.displayName;
    logout.hidden = false;
    try {
      const roomId = roomFromAddress() ?? (await pickRoom(api, notice));
      const details = await api.room(roomId);
      rememberRoom(roomId);
      if (details.role !== options.role) {
        const other = required<HTMLAnchorElement>('other-page');
        other.href = `${options.otherPage}#room=${encodeURIComponent(roomId)}`;
        other.hidden = false;
        // Instructors may still follow the room from the learner page; the console is for instructors only.
        if (options.role === 'instructor') {
          showView('wrong-page-view');
          return;
        }
      }
      openRoom(api, session, details, options);
      return;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        clearSession();
        session = null;
        api.token = null;
        continue;
      }
      rememberRoom(null);
      notice = errorText(err);
    }
  }
}

/** Storage for unsent messages; reading `window.localStorage` itself throws where the browser disables it. */
const localStorageOf = (): Storage => window.localStorage;

function forgetUnsent(userId: string): void {
  try {
    clearUnsent(localStorageOf(), userId);
  } catch {
    // No storage: nothing was kept.
  }
}

function openRoom(api: RoomcastApi, session: StoredSession, details: RoomDetails, options: RoomPageOptions): void {
  const settings = readPageSettings();
  const roomId = details.room.id;
  showView('room-view');
  required('room-name').textContent = details.room.name;
  document.title = `${details.room.name} · roomcast`;

  const names = new MemberNames(api, roomId, details.members);
  const client = new RoomClient({
    api,
    roomId,
    stompUrls: settings.stompUrls,
    ...(settings.webSocketFactory ? { webSocketFactory: settings.webSocketFactory } : {}),
    // Unsent messages survive a reload, kept per user (and room) so another login here never sees them.
    persistUnsent: { storage: localStorageOf, userId: session.user.id },
  });
  const hooks = options.setup({ api, session, details, client, names });
  const composerText = required<HTMLInputElement>('message-text');
  const view = new MessageView(
    required('messages'),
    required('pending'),
    names,
    session.user,
    {
      discard(o) {
        client.discard(o.clientMsgId);
        composerText.focus();
      },
      edit(o) {
        const request = client.edit(o.clientMsgId);
        if (request) hooks.edit(request);
        composerText.focus();
      },
    },
    hooks.decorate,
  );

  const state = required('connection');
  const online = required('online-count');
  const banner = required('room-error');
  const sendNotice = required('send-notice');
  client.on('state', (s) => {
    state.dataset.state = s;
    state.textContent = STATE_TEXT[s];
  });
  // Interactions (polls, hands, the view) have a panel of their own; the list is for what people write.
  client.on('message', (m, { before }) => {
    if (m.kind !== 'action') view.insert(m, before);
  });
  client.on('outgoing', (o) => {
    if (o.request.kind !== 'action') view.outgoing(o);
  });
  mountInteractionPanel({ api, client, roomId, viewer: { userId: session.user.id, role: options.role }, names });
  client.on('presence', (p) => {
    online.textContent = `${p.online} online`;
    online.dataset.online = String(p.online);
    hooks.onPresence?.(p);
  });
  client.on('error', (err, fatal) => {
    if (err.code === 'storage_unavailable') {
      sendNotice.textContent = 'This browser cannot keep unsent messages (storage is off or full): if you reload, anything not yet sent is lost.';
      sendNotice.hidden = false;
    }
    if (!fatal) return;
    if (err instanceof ApiError && err.status === 401) {
      clearSession();
      window.location.reload();
      return;
    }
    banner.textContent = errorText(err);
    banner.hidden = false;
  });
  // fetch keepalive (not sendBeacon, which cannot send the Authorization header) outlives the page.
  window.addEventListener('pagehide', () => void client.stop({ leave: true }));
  // Back from the back-forward cache: the stopped client cannot resume, a fresh page can.
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) window.location.reload();
  });
  client.start();
}
