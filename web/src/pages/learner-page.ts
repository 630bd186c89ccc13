/**
 * The learner's room page: the room live, chat to everyone or ask the instructor privately.
 */
import type { Audience, MessageKind } from '../../../shared/protocol/messages';
import { required } from '../ui/dom';
import { bootRoomPage } from '../ui/room-page';

/** What each choice of the "To" menu sends. */
const TARGETS: Record<string, { audience: Audience; kind: MessageKind }> = {
  everyone: { audience: 'everyone', kind: 'chat' },
  instructors: { audience: 'instructors', kind: 'question' },
};

void bootRoomPage({
  role: 'learner',
  otherPage: 'instructor.html',
  setup({ client }) {
    const form = required<HTMLFormElement>('composer');
    const text = required<HTMLInputElement>('message-text');
    const to = required<HTMLSelectElement>('audience');
    form.onsubmit = (event) => {
      event.preventDefault();
      const value = text.value.trim();
      const target = TARGETS[to.value];
      if (!value || !target) return;
      client.send({ ...target, body: { text: value } });
      text.value = '';
      text.focus();
    };
    return {
      edit(request) {
        text.value = typeof request.body.text === 'string' ? request.body.text : '';
        const choice = Object.keys(TARGETS).find((k) => TARGETS[k]?.audience === request.audience && TARGETS[k]?.kind === request.kind);
        if (choice) to.value = choice;
      },
    };
  },
});
