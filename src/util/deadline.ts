/**
 * Deadlines for calls into libraries that can wait (nearly) forever on a service that accepts a request
 * and never answers (@actions/cache, @actions/artifact and the Azure SDK under them).
 *
 * Racing a promise against a timer is not enough: the abandoned call would keep its sockets, retries
 * and timers, hold the process open long after the step is done, and could reject later with nobody
 * listening. So the call runs in its own async context, every HTTP request it starts (now or in a later
 * retry) is recorded through node:diagnostics_channel, and when the deadline passes all of them are
 * destroyed, and any request it still starts is destroyed at once. The libraries then fail fast (the
 * error code is not in the Azure SDK's retryable list; the Twirp clients retry a few times, each
 * attempt failing at once) and their promise settles; its outcome is ignored, never unhandled.
 * Requests made by other code at the same time are untouched (they belong to another async context).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';

/**
 * The code the abandoned call's requests fail with, by default: not one the Azure SDK retries on, so
 * blob transfers end at once; the Twirp clients of @actions/cache and @actions/artifact retry it (5
 * attempts, ~30 s of back-off, each attempt failing at once) and then log this module's message.
 */
export const ABANDONED_CODE = 'ITEST_DEADLINE';
/**
 * A code the Twirp clients treat as a network error and give up on at once (the Azure SDK does not retry
 * it either), for callers whose library does not log the error itself: its message there would read
 * "Unable to make request: EHOSTUNREACH ... make sure your runner has access to all GitHub endpoints".
 */
export const FAIL_FAST_CODE = 'EHOSTUNREACH';

export class DeadlineExceeded extends Error {
  constructor(
    readonly label: string,
    readonly seconds: number,
    /** Method and URL (no query: SAS tokens stay out of logs) of every request the call started. */
    readonly requests: string[],
    /** Settles when the abandoned call has ended (its outcome is ignored). */
    readonly settled: Promise<void>,
  ) {
    super(`${label} gave up after ${seconds} s`);
    this.name = 'DeadlineExceeded';
  }
}

interface Tracked {
  /** Requests not closed yet. */
  requests: Set<ClientRequest>;
  seen: string[];
  abandoned?: Error;
}

const context = new AsyncLocalStorage<Tracked>();
const CHANNEL = 'http.client.request.start';

function onRequest(message: unknown): void {
  const t = context.getStore();
  if (!t) return;
  const req = (message as { request: ClientRequest }).request;
  const host = String(req.getHeader('host') ?? req.host);
  t.seen.push(`${req.method} ${req.protocol}//${host}${req.path.split('?')[0]}`);
  if (t.abandoned) {
    req.destroy(t.abandoned);
    return;
  }
  t.requests.add(req);
  req.once('close', () => t.requests.delete(req));
}

let active = 0;
const EXPIRED = Symbol('expired');

/**
 * Runs `fn`; if it has not settled after `seconds`, destroys its HTTP requests and rejects with
 * DeadlineExceeded. Errors of `fn` itself pass through unchanged.
 */
export async function withDeadline<T>(
  label: string,
  seconds: number,
  fn: () => Promise<T>,
  code: string = ABANDONED_CODE,
): Promise<T> {
  const tracked: Tracked = { requests: new Set(), seen: [] };
  if (active++ === 0) subscribe(CHANNEL, onRequest);
  let ended = false;
  const call = context.run(tracked, () => Promise.resolve().then(fn));
  const settled = call.then(
    () => undefined,
    () => undefined,
  );
  void settled.then(() => {
    ended = true;
    if (--active === 0) unsubscribe(CHANNEL, onRequest);
  });
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<typeof EXPIRED>((resolve) => {
    timer = setTimeout(() => resolve(EXPIRED), seconds * 1000);
  });
  try {
    const first = await Promise.race([call, expired]);
    if (first !== EXPIRED) return first;
  } finally {
    clearTimeout(timer);
  }
  if (!ended) {
    // Worded without "timeout"/"ECONN..." on purpose: the Azure SDK retries errors whose message has those.
    tracked.abandoned = Object.assign(
      new Error(`itest abandoned this request: ${label} exceeded its deadline of ${seconds} s`),
      { code },
    );
    for (const req of tracked.requests) req.destroy(tracked.abandoned);
  }
  throw new DeadlineExceeded(label, seconds, tracked.seen, settled);
}

/** A positive number of seconds from the environment, or undefined. */
export function secondsFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}
