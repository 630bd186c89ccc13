/**
 * The instructor console: every message of the room (from the instructor's durable queue, so
 * nothing sent while the console was closed is missed), questions highlighted, broadcasts to
 * the room, private replies to one learner, and who is online.
 */
import type { RoomMessage } from '../../../shared/protocol/messages';
import type { OnlineMember } from '../../../shared/protocol/presence';
import { mountCampaignPanel } from '../ui/campaign-panel';
import { el, required } from '../ui/dom';
import { bootRoomPage } from '../ui/room-page';

const EVERYONE = 'everyone';

void bootRoomPage({
  role: 'instructor',
  otherPage: 'index.html',
  setup({ api, client, names, session, details }) {
    mountCampaignPanel(api, details.room.id);
    const form = required<HTMLFormElement>('composer');
    const text = required<HTMLInputElement>('message-text');
    const to = required<HTMLSelectElement>('audience');
    const onlineList = required<HTMLUListElement>('online-members');

    const fillRecipients = (): void => {
      const chosen = to.value;
      to.replaceChildren(
        el('option', { value: EVERYONE }, 'Everyone (announcement)'),
        ...names.learners().map((m) => el('option', { value: m.userId }, `Privately to ${m.displayName}`)),
      );
      to.value = [...to.options].some((o) => o.value === chosen) ? chosen : EVERYONE;
    };
    fillRecipients();
    names.onChange(fillRecipients);

    form.onsubmit = (event) => {
      event.preventDefault();
      const value = text.value.trim();
      if (!value) return;
      const body = { text: value };
      if (to.value === EVERYONE) client.send({ audience: 'everyone', kind: 'announcement', body });
      else client.send({ audience: 'member', recipientId: to.value, kind: 'answer', body });
      text.value = '';
      text.focus();
    };

    const replyTo = (m: RoomMessage): void => {
      if (![...to.options].some((o) => o.value === m.senderId)) fillRecipients();
      to.value = m.senderId;
      text.focus();
    };

    return {
      edit(request) {
        text.value = typeof request.body.text === 'string' ? request.body.text : '';
        const recipient = request.audience === 'member' ? request.recipientId : undefined;
        if (!recipient) {
          to.value = EVERYONE;
          return;
        }
        if (![...to.options].some((o) => o.value === recipient)) fillRecipients();
        // Never let a private reply fall back to "Everyone": keep its recipient even if they left the list.
        if (![...to.options].some((o) => o.value === recipient)) to.append(el('option', { value: recipient }, `Privately to ${names.nameOf(recipient)}`));
        to.value = recipient;
      },
      decorate(item, m) {
        if (m.senderId === session.user.id) return;
        const reply = el('button', { type: 'button', class: 'reply' }, 'Reply privately');
        reply.onclick = () => replyTo(m);
        item.append(reply);
      },
      onPresence(p) {
        const members: OnlineMember[] = p.members ?? [];
        onlineList.replaceChildren(
          ...members.map((m) => el('li', { 'data-user-id': m.userId }, m.displayName, m.role === 'instructor' ? ' (instructor)' : '')),
        );
      },
    };
  },
});
