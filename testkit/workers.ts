/**
 * Load generators run in child processes so they do not share a core's event loop with the
 * system under test or with each other. Protocol over IPC: parent sends {type:'start', params};
 * the child answers {type:'ready'}; the parent later sends {type:'stop'} and the child answers
 * {type:'result', result} and exits.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface WorkerHandle<R> {
  pid: number;
  /** Resolves with what the worker passed to `ready` (a server's port, say). */
  ready: Promise<unknown>;
  /** Asks the worker to finish and resolves with its result. */
  stop(): Promise<R>;
  /** Resolves with the result when the worker finishes by itself. */
  done: Promise<R>;
  /** Sends a worker-specific message and resolves with the worker's `{type:'reply'}` answer. */
  request(message: { type: string } & Record<string, unknown>): Promise<unknown>;
  kill(): void;
}

/**
 * `module` is the worker's file as `new URL('./worker.ts', import.meta.url)` from the caller: a
 * reference bundlers and readers follow, unlike a bare name resolved somewhere else.
 */
export function startWorker<P, R>(module: URL, params: P, options: { env?: NodeJS.ProcessEnv } = {}): WorkerHandle<R> {
  const file = fileURLToPath(module);
  const name = file.split('/').slice(-2).join('/');
  const child: ChildProcess = fork(file, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let onReady!: (info: unknown) => void;
  let onFail!: (e: Error) => void;
  const ready = new Promise<unknown>((res, rej) => {
    onReady = res;
    onFail = rej;
  });
  const replies: ((data: unknown) => void)[] = [];
  const done = new Promise<R>((resolve, reject) => {
    child.on('message', (m: { type: string; result?: R; error?: string; info?: unknown; data?: unknown }) => {
      if (m.type === 'ready') onReady(m.info);
      if (m.type === 'reply') replies.shift()?.(m.data);
      if (m.type === 'result') resolve(m.result as R);
      if (m.type === 'error') {
        const err = new Error(`worker ${name}: ${m.error}`);
        onFail(err);
        reject(err);
      }
    });
    child.on('exit', (code) => {
      const err = new Error(`worker ${name} exited with ${code}`);
      onFail(err);
      reject(err);
    });
  });
  child.send({ type: 'start', params });
  return {
    pid: child.pid as number,
    ready,
    done,
    stop: () => {
      child.send({ type: 'stop' });
      return done;
    },
    request: (message) =>
      new Promise((resolve) => {
        replies.push(resolve);
        child.send(message);
      }),
    kill: () => child.kill('SIGKILL'),
  };
}

/** The child side of `request`: answers the parent. */
export const reply = (data: unknown): void => void process.send?.({ type: 'reply', data });

/** The child side: `run` gets the params and a promise that resolves when asked to stop. */
export function workerMain<P, R>(run: (params: P, stopped: Promise<void>, ready: (info?: unknown) => void) => Promise<R>): void {
  let onStop!: () => void;
  const stopped = new Promise<void>((r) => (onStop = r));
  // The parent is gone (it crashed or exited early): nobody will ask for the result, and a
  // worker holding sockets and timers would otherwise live on as an orphan.
  process.on('disconnect', () => process.exit(1));
  process.on('message', (m: { type: string; params?: P }) => {
    if (m.type === 'stop') onStop();
    if (m.type !== 'start') return;
    run(m.params as P, stopped, (info) => process.send?.({ type: 'ready', info })).then(
      (result) => process.send?.({ type: 'result', result }, () => process.exit(0)),
      (err: unknown) => process.send?.({ type: 'error', error: String((err as Error)?.stack ?? err) }, () => process.exit(1)),
    );
  });
}
