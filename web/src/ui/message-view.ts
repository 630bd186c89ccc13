/**
 * The room's messages as a list, in seq order, plus the person's own messages still being
 * sent. A message's kind picks how it is labelled (a dispatch table, with a fallback for kinds
 * this page does not know yet); its text is always set as text.
 */
import type { MessageKind, RoomMessage } from '../../../shared/protocol/messages';
import type { OutgoingMessage, User } from '../client/index';
import { el } from './dom';
import type { MemberNames } from './member-names';

interface KindView {
  /** Shown next to the sender; null for plain chat. */
  label: string | null;
}

const KIND_VIEWS: Record<MessageKind, KindView> = {
  chat: { label: null },
  question: { label: 'Question' },
  answer: { label: 'Answer' },
  action: { label: 'Action' },
  announcement: { label: 'Announcement' },
};
const UNKNOWN_KIND: KindView = { label: 'Message' };

const kindView = (kind: string): KindView => (Object.hasOwn(KIND_VIEWS, kind) ? KIND_VIEWS[kind as MessageKind] : UNKNOWN_KIND);

/** The text of a message body: `body.text` when it is a string, else the body as JSON (still text). */
function textOf(body: Record<string, unknown>): string {
  return typeof body.text === 'string' ? body.text : JSON.stringify(body);
}

const timeOf = (iso: string): string => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/** Extra controls a page adds to a message (the console's "Reply privately"). */
export type MessageDecorator = (item: HTMLLIElement, message: RoomMessage) => void;

/** What the buttons of a message the server refused do. */
export interface FailedActions {
  discard(o: OutgoingMessage): void;
  /** Puts the text back in the composer; sending it again makes a new message. */
  edit(o: OutgoingMessage): void;
}

/** At most this much of a message's text in its buttons' accessible names. */
const NAME_TEXT_CHARS = 40;
const shortText = (text: string): string => (text.length > NAME_TEXT_CHARS ? `${text.slice(0, NAME_TEXT_CHARS)}…` : text);

export class MessageView {
  private readonly items = new Map<string, HTMLLIElement>();
  private readonly pendingItems = new Map<string, HTMLLIElement>();

  constructor(
    private readonly list: HTMLOListElement,
    private readonly pendingList: HTMLOListElement,
    private readonly names: MemberNames,
    private readonly self: User,
    private readonly failedActions: FailedActions,
    private readonly decorate: MessageDecorator = () => undefined,
  ) {
    names.onChange(() => {
      for (const node of list.querySelectorAll<HTMLElement>('[data-user-id]')) {
        node.textContent = this.names.nameOf(node.dataset.userId as string);
      }
    });
  }

  /** Shows a message before `before` (null: at the end); one of ours replaces its "sending" entry. */
  insert(message: RoomMessage, before: RoomMessage | null): void {
    const item = this.pendingItems.get(message.clientMsgId) ?? el('li');
    this.pendingItems.delete(message.clientMsgId);
    this.render(item, message);
    this.keepingBottom(() => this.list.insertBefore(item, before ? (this.items.get(before.id) ?? null) : null));
    this.items.set(message.id, item);
  }

  /** Follows new messages while the reader is at the bottom; leaves them alone while they scroll back. */
  private keepingBottom(change: () => void): void {
    const panel = this.list.parentElement;
    const atBottom = !panel || panel.scrollHeight - panel.scrollTop - panel.clientHeight < 48;
    change();
    if (panel && atBottom) panel.scrollTop = panel.scrollHeight;
  }

  /**
   * Follows one of our sends: "sending", then "sent" (its seq known), or "failed" with the
   * server's reason and buttons to discard or edit it; a discarded one goes away.
   */
  outgoing(o: OutgoingMessage): void {
    if (o.status === 'sent') return; // insert() already put it in place
    if (o.status === 'discarded') {
      this.pendingItems.get(o.clientMsgId)?.remove();
      this.pendingItems.delete(o.clientMsgId);
      return;
    }
    let item = this.pendingItems.get(o.clientMsgId);
    if (!item) {
      item = el('li', { class: 'msg msg-own', 'data-client-msg-id': o.clientMsgId });
      item.append(
        el('div', { class: 'msg-meta' }, el('span', { class: 'msg-sender' }, 'You'), el('span', { class: 'msg-status' })),
        el('p', { class: 'msg-text' }, textOf(o.request.body)),
      );
      this.pendingItems.set(o.clientMsgId, item);
      const added = item;
      this.keepingBottom(() => this.pendingList.append(added));
    }
    item.dataset.status = o.status;
    const status = item.querySelector('.msg-status') as HTMLElement;
    if (o.status === 'failed') {
      status.textContent = 'not sent';
      this.showRefusal(item, o);
    } else status.textContent = o.error ? 'sending… (will retry)' : 'sending…';
  }

  /** The server's reason, and what the person can do about it. */
  private showRefusal(item: HTMLLIElement, o: OutgoingMessage): void {
    if (item.querySelector('.msg-actions')) return;
    const text = textOf(o.request.body);
    item.dataset.errorCode = o.error?.code ?? '';
    const discard = el('button', { type: 'button', class: 'discard', 'aria-label': `Discard unsent message: ${shortText(text)}` }, 'Discard');
    const edit = el('button', { type: 'button', class: 'edit', 'aria-label': `Edit unsent message: ${shortText(text)}` }, 'Edit');
    discard.onclick = () => this.failedActions.discard(o);
    edit.onclick = () => this.failedActions.edit(o);
    item.append(
      // role=status: a screen reader hears that the message did not go, and why.
      el('p', { class: 'msg-error', role: 'status' }, `The server refused it: ${o.error?.message ?? 'no reason given'}`),
      el('div', { class: 'msg-actions' }, discard, edit),
    );
  }

  private render(item: HTMLLIElement, m: RoomMessage): void {
    const view = kindView(m.kind);
    const mine = m.senderId === this.self.id;
    item.className = `msg msg-${m.kind}${mine ? ' msg-own' : ''}${m.audience === 'everyone' ? '' : ' msg-private'}`;
    Object.assign(item.dataset, { id: m.id, seq: String(m.seq), kind: m.kind, audience: m.audience, clientMsgId: m.clientMsgId });
    if (mine) item.dataset.status = 'sent';
    else delete item.dataset.status;
    item.replaceChildren(
      el(
        'div',
        { class: 'msg-meta' },
        mine ? el('span', { class: 'msg-sender' }, 'You') : el('span', { class: 'msg-sender', 'data-user-id': m.senderId }, this.names.nameOf(m.senderId)),
        view.label ? el('span', { class: 'msg-label' }, view.label) : null,
        this.audienceNote(m),
        el('time', { datetime: m.createdAt }, timeOf(m.createdAt)),
        mine ? el('span', { class: 'msg-status' }, 'sent') : null,
      ),
      el('p', { class: 'msg-text' }, textOf(m.body)),
    );
    this.decorate(item, m);
  }

  private audienceNote(m: RoomMessage): HTMLElement | null {
    if (m.audience === 'instructors') return el('span', { class: 'msg-audience' }, 'to instructors');
    if (m.audience === 'member' && m.recipientId) {
      const to = m.recipientId === this.self.id ? 'you' : el('span', { 'data-user-id': m.recipientId }, this.names.nameOf(m.recipientId));
      return el('span', { class: 'msg-audience' }, 'privately to ', to);
    }
    return null;
  }
}
