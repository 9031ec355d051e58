/** withDeadline: bounds a call, and stops the HTTP requests of the abandoned call (only those). */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { DeadlineExceeded, secondsFromEnv, withDeadline } from '../../src/util/deadline.ts';

let server: Server;
let port = 0;
before(async () => {
  // /hang never answers; anything else answers at once.
  server = createServer((req, res) => {
    if (req.url?.startsWith('/hang')) return;
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

function get(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('withDeadline', () => {
  it('passes values and errors of a call that ends in time', async () => {
    assert.equal(await withDeadline('x', 5, () => get('/fast')), 'ok');
    await assert.rejects(
      withDeadline('x', 5, () => Promise.reject(new Error('own'))),
      /own/,
    );
  });

  it('gives up at the deadline, destroys the call’s requests (also later retries) and leaves others alone', async () => {
    const outcomes: string[] = [];
    let retried: Promise<void> | undefined;
    const outside = get('/hang-outside').then(
      () => 'answered',
      (e: Error) => `failed: ${e.message}`,
    );
    const t0 = performance.now();
    const err = await withDeadline('test call', 0.5, async () => {
      try {
        await get('/hang?sig=secret');
      } catch (e) {
        outcomes.push(`first: ${(e as NodeJS.ErrnoException).code}`);
        // A library retrying after its request failed: the retry fails at once too.
        retried = get('/hang-again').then(
          () => void outcomes.push('retry answered'),
          (e2: NodeJS.ErrnoException) => void outcomes.push(`retry: ${e2.code}`),
        );
        await retried;
        throw e;
      }
    }).catch((e: unknown) => e);
    const s = (performance.now() - t0) / 1000;
    assert.ok(err instanceof DeadlineExceeded);
    assert.equal(err.message, 'test call gave up after 0.5 s');
    assert.ok(s >= 0.45 && s < 3, `${s} s`);
    await err.settled;
    assert.deepEqual(outcomes, ['first: ITEST_DEADLINE', 'retry: ITEST_DEADLINE']);
    assert.deepEqual(err.requests, [
      `GET http://127.0.0.1:${port}/hang`,
      `GET http://127.0.0.1:${port}/hang-again`,
    ]);
    // The request made outside the call is still open.
    const state = await Promise.race([outside, new Promise((r) => setTimeout(() => r('pending'), 200))]);
    assert.equal(state, 'pending');
    server.closeAllConnections();
    assert.match(await outside, /failed/);
  });

  it('reads positive seconds from the environment', () => {
    assert.equal(secondsFromEnv({ X: '3' }, 'X'), 3);
    assert.equal(secondsFromEnv({ X: '0' }, 'X'), undefined);
    assert.equal(secondsFromEnv({ X: 'soon' }, 'X'), undefined);
    assert.equal(secondsFromEnv({}, 'X'), undefined);
  });
});
