// The attempt loop's context for tests that run the mkosi stand-in (test/fixtures/fake-mkosi.mjs) with the
// real systemd-journal-remote and journalctl.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from '../../src/run/execute-test.ts';
import type { Accelerator } from '../../src/run/accelerator.ts';
import { dialectFor } from '../../src/mkosi/dialect.ts';
import { OutputLayout } from '../../src/run/output-layout.ts';

export const FAKE_MKOSI = new URL('../fixtures/fake-mkosi.mjs', import.meta.url).pathname;
export const JOURNAL_REMOTE = [
  '/usr/lib/systemd/systemd-journal-remote',
  '/lib/systemd/systemd-journal-remote',
].find(existsSync)!;

/** vhost-device-vsock on PATH (scripts/setup-host.sh installs it), or '' where it is not. */
export const VHOST_DEVICE_VSOCK = spawnSync('sh', ['-c', 'command -v vhost-device-vsock'], {
  encoding: 'utf8',
}).stdout.trim();

export async function standinContext(o: {
  /** FAKE_MKOSI_PLAN: one behaviour per invocation. */
  plan: string;
  accelerator: Accelerator;
  out?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  shell?: boolean;
  onAttemptStart?: TestContext['onAttemptStart'];
}): Promise<{ ctx: TestContext; out: string }> {
  const out = o.out ?? (await mkdtemp(join(tmpdir(), 'itest-standin-')));
  const ctx: TestContext = {
    base: {
      mkosi: [FAKE_MKOSI],
      dialect: dialectFor('25.3'),
      configDir: '/cfg',
      imageDir: '/img',
      transport: 'vsock',
    },
    accelerator: o.accelerator,
    runId: 'r1',
    attemptEnv: {
      layout: new OutputLayout(out),
      journalRemote: JOURNAL_REMOTE,
      journalctl: 'journalctl',
      env: { ...process.env, FAKE_MKOSI_PLAN: o.plan, FAKE_MKOSI_STATE: join(out, 'state'), ...o.env },
      signal: o.signal ?? new AbortController().signal,
    },
    rerun: (s) => `itest run --test ${s.name}`,
    ...(o.shell ? { shell: true } : {}),
    ...(o.onAttemptStart ? { onAttemptStart: o.onAttemptStart } : {}),
  };
  return { ctx, out };
}
