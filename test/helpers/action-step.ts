/**
 * Runs an action step the way the runner does: a child process with INPUT_* variables and fresh
 * GITHUB_STEP_SUMMARY / GITHUB_OUTPUT / GITHUB_STATE files, whose contents come back parsed.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StepRun {
  code: number | null;
  /** stdout and stderr interleaved, as the runner's log shows them. */
  stdout: string;
  summary: string;
  outputs: Record<string, string>;
  state: string;
  /** A fresh directory of this step's own, e.g. for INPUT_OUTPUT. */
  dir: string;
}

/** Parses the heredoc format @actions/core writes to GITHUB_OUTPUT. */
export function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /^([^<\n]+)<<(ghadelimiter_[^\n]+)\n([\s\S]*?)\n\2$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) out[m[1]!] = m[3]!;
  return out;
}

export async function runStep(p: {
  /** Arguments after `node`, e.g. the bundled entry or `--import tsx src/action/main-entry.ts`. */
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  inputs: Record<string, string>;
  /** Called with the step's own directory before it starts (to point inputs into it). */
  prepare?: (dir: string) => Record<string, string>;
}): Promise<StepRun> {
  const dir = await mkdtemp(join(tmpdir(), 'itest-step-'));
  const files = {
    summary: join(dir, 'summary.md'),
    outputs: join(dir, 'outputs'),
    state: join(dir, 'state'),
  };
  for (const f of Object.values(files)) await writeFile(f, '');
  const env: NodeJS.ProcessEnv = {
    ...p.env,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_OUTPUT: files.outputs,
    GITHUB_STATE: files.state,
    ...p.prepare?.(dir),
  };
  for (const [k, v] of Object.entries(p.inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  const r = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const c = spawn(process.execPath, p.argv, { cwd: p.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.on('close', (code) => resolve({ code, stdout }));
  });
  return {
    ...r,
    summary: await readFile(files.summary, 'utf8'),
    outputs: parseOutputs(await readFile(files.outputs, 'utf8')),
    state: await readFile(files.state, 'utf8'),
    dir,
  };
}
