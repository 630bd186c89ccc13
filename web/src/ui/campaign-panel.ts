/**
 * The console's "Announce by e-mail" panel: starts a bulk announcement to the room's members
 * and follows this room's campaigns with a progress bar, the counts, the pace, and why one
 * waits or is paused; pause, resume and cancel. Progress is polled (every 2 s while one runs):
 * campaigns last minutes to hours and nobody needs each mail pushed.
 */
import type { CampaignBody, RecipientState } from '../../../shared/protocol/campaigns';
import type { RoomcastApi } from '../client/index';
import { el, required } from './dom';
import { errorText } from './error-text';

const POLL_MS = 2000;
const FINAL: readonly RecipientState[] = ['sent', 'failed', 'suppressed', 'cancelled'];
const SHOWN: readonly RecipientState[] = ['sent', 'queued', 'sending', 'deferred', 'failed', 'suppressed', 'cancelled'];

const STATE_TEXT: Record<CampaignBody['state'], string> = { running: 'Sending', paused: 'Paused', cancelled: 'Cancelled', done: 'Done' };

export function mountCampaignPanel(api: RoomcastApi, roomId: string): void {
  const form = required<HTMLFormElement>('campaign-form');
  const subject = required<HTMLInputElement>('campaign-subject');
  const text = required<HTMLTextAreaElement>('campaign-text');
  const notice = required<HTMLParagraphElement>('campaign-notice');
  const list = required<HTMLUListElement>('campaign-list');
  let timer: number | null = null;

  const say = (message: string): void => {
    notice.textContent = message;
    notice.hidden = message === '';
  };

  const act = async (id: string, action: 'pause' | 'resume' | 'cancel'): Promise<void> => {
    try {
      await api.campaignAction(id, action);
      say('');
    } catch (err) {
      say(errorText(err));
    }
    await refresh();
  };

  const render = (c: CampaignBody): HTMLLIElement => {
    const final = FINAL.reduce((n, s) => n + c.counts[s], 0);
    const percent = c.recipients === 0 ? 100 : Math.floor((final / c.recipients) * 100);
    const counts = SHOWN.filter((s) => c.counts[s] > 0).map((s) => `${c.counts[s]} ${s}`).join(' · ');
    const why = c.state === 'paused' ? `Paused${c.pausedBy === 'gate' ? ' by the load gate' : ''}: ${c.pauseReason ?? ''}` : c.waiting ? `Waiting: ${c.waiting}` : '';
    const buttons: HTMLButtonElement[] = [];
    const button = (label: string, action: 'pause' | 'resume' | 'cancel'): void => {
      const b = el('button', { type: 'button', 'data-action': action }, label);
      b.onclick = () => void act(c.id, action);
      buttons.push(b);
    };
    if (c.state === 'running') button('Pause', 'pause');
    if (c.state === 'paused') button('Resume', 'resume');
    if (c.state === 'running' || c.state === 'paused') button('Cancel', 'cancel');
    const bar = el('progress', { max: '100', value: String(percent), 'aria-label': `${c.subject}: ${percent}% of ${c.recipients} recipients done` });
    return el(
      'li',
      { class: 'campaign', 'data-campaign-id': c.id, 'data-state': c.state },
      el('p', { class: 'campaign-title' }, el('strong', {}, c.subject), ` — ${STATE_TEXT[c.state]}, ${final} of ${c.recipients} done (${percent}%)`),
      bar,
      el('p', { class: 'campaign-counts' }, counts, c.state === 'running' ? ` · ${c.perMinute} per minute` : ''),
      why ? el('p', { class: 'campaign-why', role: 'status' }, why) : null,
      buttons.length > 0 ? el('p', { class: 'campaign-actions' }, ...buttons) : null,
    );
  };

  const refresh = async (): Promise<void> => {
    if (timer !== null) window.clearTimeout(timer);
    timer = null;
    try {
      const { campaigns } = await api.campaigns(roomId);
      list.replaceChildren(...campaigns.map(render));
      if (campaigns.some((c) => c.state === 'running' || c.state === 'paused')) timer = window.setTimeout(() => void refresh(), POLL_MS);
    } catch (err) {
      say(errorText(err));
      timer = window.setTimeout(() => void refresh(), POLL_MS * 5);
    }
  };

  // One key per announcement written: a submit retried after a network error starts it once.
  let submission = crypto.randomUUID();
  form.onsubmit = async (event) => {
    event.preventDefault();
    const submit = form.querySelector('button[type="submit"]') as HTMLButtonElement;
    submit.disabled = true;
    try {
      const { campaign } = await api.createCampaign({ roomIds: [roomId], subject: subject.value, text: text.value }, submission);
      say(`Sending to ${campaign.recipients} members with an e-mail address.`);
      form.reset();
      submission = crypto.randomUUID();
    } catch (err) {
      say(errorText(err));
    } finally {
      submit.disabled = false;
    }
    await refresh();
  };

  void refresh();
}
