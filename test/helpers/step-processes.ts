/**
 * The action's steps as real processes, for tests that kill the main step and check what the post step
 * stops: the runner's environment and state file, a child's output, and what /proc says.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export { listProcesses } from '../../src/util/process.ts';

/** The test runner's own environment without anything a real runner would have given it. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(STATE_|INPUT_|GITHUB_|ACTIONS_|RUNNER_)/.test(k)),
  );
}

/** What the runner does with GITHUB_STATE after a step: each `name<<delim ... delim` becomes STATE_name. */
export function stateEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^([^\n<]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) out[`STATE_${m[1]}`] = m[3]!;
  return out;
}

export function collect(c: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  c.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  c.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => c.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** True once pid has exited (a zombie waiting for its reaper counts as exited). */
export async function isGone(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return !stat || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

/**
 * Polls `check` every 100 ms until it returns a value, `stop` says to give up, or `seconds` pass (a
 * deadline in time, not in tries: scanning /proc takes longer on a loaded machine).
 */
export async function pollFor<T>(
  check: () => Promise<T | undefined>,
  p: { seconds: number; stop?: () => boolean },
): Promise<T | undefined> {
  const end = Date.now() + p.seconds * 1000;
  while (Date.now() < end && !p.stop?.()) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}
