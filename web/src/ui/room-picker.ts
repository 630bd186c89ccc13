import type { RoomcastApi } from '../client/index';
import { el, required, showView } from './dom';
import { errorText } from './error-text';

/** The room named in the address (`#room=<id>`), so a reload or a shared link reopens it. */
export function roomFromAddress(): string | null {
  return new URLSearchParams(window.location.hash.slice(1)).get('room');
}

export function rememberRoom(roomId: string | null): void {
  history.replaceState(null, '', roomId ? `#room=${encodeURIComponent(roomId)}` : window.location.pathname);
}

/** Lists the person's rooms and offers to join one by invite code; resolves with the room chosen. */
export async function pickRoom(api: RoomcastApi, notice = ''): Promise<string> {
  showView('rooms-view');
  const list = required<HTMLUListElement>('room-list');
  const form = required<HTMLFormElement>('join-form');
  const code = required<HTMLInputElement>('invite-code');
  const problem = required('rooms-error');
  problem.textContent = notice;
  const { rooms } = await api.me();
  return new Promise((resolve) => {
    list.replaceChildren(
      ...rooms.map((room) => {
        const open = el('button', { type: 'button', 'data-room-id': room.id }, room.name, ' ', el('span', { class: 'role' }, `(${room.role})`));
        open.onclick = () => resolve(room.id);
        return el('li', {}, open);
      }),
    );
    if (rooms.length === 0) list.append(el('li', { class: 'empty' }, 'No rooms yet: join one with the code your instructor gave you.'));
    form.onsubmit = async (event) => {
      event.preventDefault();
      problem.textContent = '';
      try {
        const { room } = await api.joinRoom(code.value.trim());
        code.value = '';
        resolve(room.id);
      } catch (err) {
        problem.textContent = errorText(err);
        code.select();
      }
    };
    (list.querySelector('button') ?? code).focus();
  });
}
