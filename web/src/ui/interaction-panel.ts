/**
 * The room's interactions on a page (issue 18): the step the instructor shows, polls, raised
 * hands and the question board. The state is the server's fold of the log, read whenever the
 * connection goes live, with every live message applied on top by the same fold, so a page that
 * joined late shows what one that watched shows. Learners answer, raise a hand, upvote; the
 * console moves the view, opens, reveals and closes polls, lowers hands and marks questions.
 * Every action goes through the client's send queue (retried with the same id, never twice).
 */
import type { RoomMessage } from '../../../shared/protocol/messages';
import { openQuestions, RoomStateFold, type Interaction, type PollState, type RoomState } from '../../../shared/protocol/room-state';
import type { RoomClient, RoomcastApi } from '../client/index';
import { el, required } from './dom';
import { errorText } from './error-text';
import type { MemberNames } from './member-names';

export interface InteractionPanelDeps {
  api: RoomcastApi;
  client: RoomClient;
  roomId: string;
  viewer: { userId: string; role: 'instructor' | 'learner' };
  names: Pick<MemberNames, 'nameOf'>;
}

/** Bodies the pages send; the server fills the rest (tallies, a public question's text). */
type Request = Record<string, unknown> & { type: Interaction['type'] };

export function mountInteractionPanel(d: InteractionPanelDeps): void {
  const instructor = d.viewer.role === 'instructor';
  const stepEl = required('shown-step');
  const pollsEl = required<HTMLUListElement>('polls');
  const handsEl = required('hands');
  const boardEl = required<HTMLUListElement>('board');
  const notice = required('interaction-notice');
  let fold = new RoomStateFold(d.viewer);
  const early: RoomMessage[] = [];
  let loading = true;

  const act = (body: Request, audience: 'everyone' | 'instructors' = 'everyone'): void => {
    d.client.send({ audience, kind: 'action', body });
  };

  // A refused action (a poll closed meanwhile, a hand already up) is said here, then dropped.
  d.client.on('outgoing', (o) => {
    if (o.request.kind !== 'action' || o.status !== 'failed') return;
    notice.textContent = o.error?.message ?? 'That did not go through.';
    notice.hidden = false;
    d.client.discard(o.clientMsgId);
  });
  d.client.on('message', (m) => {
    if (m.kind !== 'action' && m.kind !== 'question') return;
    if (loading) early.push(m);
    else if (fold.apply(m)) render(fold.state);
  });
  d.client.on('state', (s) => {
    if (s === 'live') void load();
  });

  async function load(): Promise<void> {
    try {
      const { state } = await d.api.roomState(d.roomId);
      fold = new RoomStateFold(d.viewer, state);
      loading = false;
      for (const m of early.splice(0)) fold.apply(m);
      render(fold.state);
    } catch (err) {
      notice.textContent = errorText(err);
      notice.hidden = false;
    }
  }

  function render(s: RoomState): void {
    renderStep(s);
    pollsEl.replaceChildren(...s.polls.map(renderPoll).reverse());
    renderHands(s);
    renderBoard(s);
  }

  function renderStep(s: RoomState): void {
    const v = s.view;
    const text = v ? `Step ${v.step}${v.of ? ` of ${v.of}` : ''}${v.title ? `: ${v.title}` : ''}` : 'The instructor has not started';
    stepEl.replaceChildren(el('span', { class: 'step-text', 'data-step': v ? String(v.step) : '' }, text));
    if (!instructor) return;
    const step = v?.step ?? 0;
    const of = v?.of ?? undefined;
    const go = (to: number): void => act({ type: 'view.show', step: to, ...(of ? { of } : {}) });
    const prev = el('button', { type: 'button', disabled: step <= 1 }, 'Previous step');
    prev.onclick = () => go(step - 1);
    const next = el('button', { type: 'button', disabled: of !== undefined && step >= of }, step === 0 ? 'Start' : 'Next step');
    next.onclick = () => go(step + 1);
    stepEl.append(' ', prev, ' ', next);
  }

  function renderPoll(p: PollState): HTMLLIElement {
    const item = el('li', { class: 'poll', 'data-poll-id': p.pollId, 'data-open': String(p.open) }, el('p', { class: 'poll-question' }, el('strong', {}, p.question), p.open ? '' : ' (closed)'));
    const shownTally = p.tally !== null && (instructor || p.revealed || !p.open);
    if (shownTally) {
      const total = Math.max(1, p.answered);
      item.append(
        el(
          'ul',
          { class: 'tally', 'aria-label': `Results: ${p.answered} answered` },
          ...p.choices.map((c, i) => {
            const n = p.tally?.[i] ?? 0;
            const right = p.correct?.includes(i) ?? false;
            return el('li', { 'data-choice': String(i), 'data-count': String(n) }, el('span', {}, `${c}${right ? ' ✓' : ''}: ${n}`), el('meter', { min: '0', max: String(total), value: String(n), 'aria-label': `${c}: ${n} of ${p.answered}` }));
          }),
        ),
        el('p', { class: 'poll-answered' }, `${p.answered} answered`),
      );
    }
    if (instructor) {
      const buttons: HTMLButtonElement[] = [];
      if (p.open && !p.revealed) buttons.push(button('Reveal results', () => act({ type: 'poll.reveal', pollId: p.pollId })));
      if (p.open) buttons.push(button('Close poll', () => act({ type: 'poll.close', pollId: p.pollId })));
      if (buttons.length > 0) item.append(el('p', { class: 'poll-actions' }, ...buttons));
      return item;
    }
    if (p.open && (p.mine === null || p.allowChange)) item.append(answerForm(p));
    else if (p.mine !== null) item.append(el('p', { class: 'poll-mine' }, `Your answer: ${p.mine.map((c) => p.choices[c]).join(', ')}`));
    return item;
  }

  function answerForm(p: PollState): HTMLFormElement {
    const name = `poll-${p.pollId}`;
    const form = el(
      'form',
      { class: 'poll-answer' },
      el(
        'fieldset',
        {},
        el('legend', { class: 'visually-hidden' }, p.question),
        ...p.choices.map((c, i) =>
          el('label', {}, el('input', { type: p.multiple ? 'checkbox' : 'radio', name, value: String(i), checked: p.mine?.includes(i) ?? false }), ` ${c}`),
        ),
      ),
      el('button', { type: 'submit' }, p.mine === null ? 'Answer' : 'Change my answer'),
    );
    form.onsubmit = (e) => {
      e.preventDefault();
      const choices = [...form.querySelectorAll<HTMLInputElement>(`input[name="${name}"]:checked`)].map((i) => Number(i.value));
      if (choices.length === 0) return;
      act({ type: 'poll.answer', pollId: p.pollId, choices }, 'instructors');
    };
    return form;
  }

  function renderHands(s: RoomState): void {
    const mine = s.hands.some((h) => h.userId === d.viewer.userId);
    const count = el('p', { class: 'hand-count', 'data-count': String(s.hands.length) }, `${s.hands.length} ${s.hands.length === 1 ? 'hand' : 'hands'} raised`);
    if (!instructor) {
      const toggle = button(mine ? 'Lower my hand' : 'Raise my hand', () => act({ type: mine ? 'hand.lower' : 'hand.raise', userId: d.viewer.userId }));
      toggle.setAttribute('aria-pressed', String(mine));
      handsEl.replaceChildren(count, toggle);
      return;
    }
    handsEl.replaceChildren(
      count,
      el('ol', { class: 'hand-queue' }, ...s.hands.map((h) => el('li', { 'data-user-id': h.userId }, d.names.nameOf(h.userId), ' ', button(`Lower ${d.names.nameOf(h.userId)}’s hand`, () => act({ type: 'hand.lower', userId: h.userId }))))),
    );
  }

  function renderBoard(s: RoomState): void {
    const shown = s.board.filter((q) => instructor || q.public || q.senderId === d.viewer.userId);
    if (instructor) required('open-questions').textContent = `${openQuestions(s)} open`;
    boardEl.replaceChildren(
      ...shown.map((q) => {
        const flags = [q.answered ? 'answered' : null, q.pinned ? 'pinned' : null, q.public ? 'public' : null].filter(Boolean).join(', ');
        const item = el('li', { class: 'board-question', 'data-question-id': q.questionId, 'data-upvotes': String(q.upvotes), hidden: q.dismissed && !instructor }, el('span', { class: 'q-text' }, q.text ?? '(a question)'), flags ? ` (${flags})` : '', q.public ? ` · ${q.upvotes} ▲` : '');
        if (instructor) {
          const audience = q.public ? 'everyone' : 'instructors';
          const mark = (status: 'answered' | 'pinned' | 'dismissed' | 'public', on: string, off: string): HTMLButtonElement =>
            button(q[status] ? off : on, () => act({ type: 'board.mark', questionId: q.questionId, status, on: !q[status] }, status === 'public' && !q.public ? 'everyone' : audience));
          item.append(
            ' ',
            mark('answered', 'Answered', 'Not answered'),
            ' ',
            mark('pinned', 'Pin', 'Unpin'),
            ' ',
            mark('dismissed', 'Dismiss', 'Restore'),
            ' ',
            mark('public', 'Make public', 'Make private'),
          );
        } else if (q.public && !q.upvotedByMe && q.senderId !== d.viewer.userId) {
          item.append(' ', button('Upvote', () => act({ type: 'board.upvote', questionId: q.questionId })));
        }
        return item;
      }),
    );
  }

  if (instructor) mountPollCreator(act);
}

function button(label: string, onClick: () => void): HTMLButtonElement {
  const b = el('button', { type: 'button' }, label);
  b.onclick = onClick;
  return b;
}

/** The console's form that opens a poll: a question, one choice per line, the options, the right choices for a quiz. */
function mountPollCreator(act: (body: Request) => void): void {
  const form = required<HTMLFormElement>('poll-form');
  form.onsubmit = (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const choices = String(data.get('choices') ?? '')
      .split('\n')
      .map((c) => c.trim())
      .filter((c) => c !== '');
    const correct = String(data.get('correct') ?? '')
      .split(',')
      .map((c) => Number.parseInt(c.trim(), 10) - 1)
      .filter((c) => Number.isInteger(c) && c >= 0);
    const minutes = Number.parseInt(String(data.get('minutes') ?? ''), 10) || 0;
    act({
      type: 'poll.open',
      pollId: `p${Date.now().toString(36)}`,
      question: String(data.get('question') ?? '').trim(),
      choices,
      multiple: data.get('multiple') === 'on',
      allowChange: data.get('allowChange') === 'on',
      ...(correct.length > 0 ? { correct } : {}),
      ...(minutes > 0 ? { closesAt: new Date(Date.now() + minutes * 60_000).toISOString() } : {}),
    });
    form.reset();
  };
}
