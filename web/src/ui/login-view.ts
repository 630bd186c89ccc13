import type { RoomcastApi } from '../client/index';
import { required, showView } from './dom';
import { errorText } from './error-text';
import { saveSession, type StoredSession } from './session';

/** Shows the login form until a login succeeds; keeps the session for this tab. */
export function askLogin(api: RoomcastApi): Promise<StoredSession> {
  showView('login-view');
  const form = required<HTMLFormElement>('login-form');
  const username = required<HTMLInputElement>('username');
  const password = required<HTMLInputElement>('password');
  const problem = required('login-error');
  username.focus();
  return new Promise((resolve) => {
    form.onsubmit = async (event) => {
      event.preventDefault();
      problem.textContent = '';
      form.setAttribute('aria-busy', 'true');
      try {
        const { token, user } = await api.login(username.value.trim(), password.value);
        const session = { token, user };
        saveSession(session);
        password.value = '';
        form.onsubmit = null;
        resolve(session);
      } catch (err) {
        problem.textContent = errorText(err);
        password.select();
      } finally {
        form.removeAttribute('aria-busy');
      }
    };
  });
}
