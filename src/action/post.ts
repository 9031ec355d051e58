/**
 * The action's post step: after a cancel or crash of the main step, stop leftover VMs, upload whatever
 * logs exist, and say in the job summary which tests had started. Does nothing when the main step
 * finished its report (state `done`).
 *
 * Leftovers are found through /proc, not by a name pattern: every process whose command line names a path
 * in this run's output directory (mkosi and QEMU carry the status and journal chardev paths) or one of the
 * machine names seen there, plus all their descendants (a grandchild in its own session, as bwrap makes).
 */
import * as core from '@actions/core';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { uploadLogs } from './upload.ts';
import { artifactName } from './artifact-name.ts';
import { hostArch } from '../host/probe.ts';
import { listProcesses, withDescendants, type Proc } from '../util/process.ts';

/** The processes of this run: those naming the output directory or a machine of it, and their descendants. Pure. */
export function leftovers(
  procs: Proc[],
  outputDir: string,
  self: number = process.pid,
): { pids: number[]; machines: string[]; running: string[] } {
  const under = `${outputDir.replace(/\/+$/, '')}/`;
  const direct = procs.filter((p) => p.pid !== self && p.cmdline.includes(under));
  const machines = [...new Set(direct.flatMap((p) => /--machine=(itest-\S+)/.exec(p.cmdline)?.[1] ?? []))];
  const roots = procs.filter(
    (p) => p.pid !== self && (direct.includes(p) || machines.some((m) => p.cmdline.includes(m))),
  );
  const pids = withDescendants(
    procs,
    roots.map((p) => p.pid),
    self,
  );
  // The tests whose VM was still up: the status chardev of each mkosi/QEMU names .work/<test>/status.
  const statusRe = new RegExp(`${escape(under)}\\.work/([^/\\s,]+)/status`);
  const running = [...new Set(roots.flatMap((p) => statusRe.exec(p.cmdline)?.[1] ?? []))].sort();
  return { pids: [...pids], machines, running };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export interface StartedTest {
  /** The test's file name base (its name, made safe for paths). */
  name: string;
  /** The guest's status line, when it had reported. */
  status?: string;
}

/** What the output directory holds: the files worth keeping and the tests that had started. */
export async function partialState(outputDir: string): Promise<{ files: string[]; started: StartedTest[] }> {
  const top = await readdir(outputDir).catch(() => [] as string[]);
  const files = top
    .filter((f) => /\.(journal|console\.log|json|xml|log)$/.test(f))
    .sort()
    .map((f) => join(outputDir, f));
  const started: StartedTest[] = [];
  const names = new Set([
    ...top
      .filter((f) => f.endsWith('.console.log'))
      .map((f) => f.replace(/(\.attempt-\d+)?\.console\.log$/, '')),
    ...(await readdir(join(outputDir, '.work')).catch(() => [] as string[])),
  ]);
  for (const name of [...names].sort()) {
    const work = join(outputDir, '.work', name);
    // Serial transport: the journal is still the raw export stream until the run converts it.
    const exp = join(work, 'journal.export');
    if (((await stat(exp).catch(() => undefined))?.size ?? 0) > 0) files.push(exp);
    const status = (await readFile(join(work, 'status'), 'utf8').catch(() => ''))
      .trim()
      .split('\n')
      .filter(Boolean)
      .pop();
    started.push({ name, ...(status ? { status } : {}) });
  }
  return { files, started };
}

async function stillAlive(pids: number[]): Promise<number[]> {
  for (let i = 0; i < 50; i++) {
    const live = (await listProcesses()).filter((p) => pids.includes(p.pid)).map((p) => p.pid);
    if (live.length === 0) return [];
    if (i === 49) return live;
    await new Promise((r) => setTimeout(r, 100));
  }
  return [];
}

export async function post(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (core.getState('done') === 'true') return;
  const output = core.getState('output');
  if (!output) return; // The main step stopped before it knew where results go: nothing started.

  const found = leftovers(await listProcesses(), output);
  for (const pid of found.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  const survivors = await stillAlive(found.pids);
  if (found.pids.length > 0)
    core.info(
      `post: stopped ${found.pids.length} leftover process(es) of ${found.machines.length} VM(s)` +
        `${found.machines.length ? `: ${found.machines.join(', ')}` : ''}` +
        `${survivors.length ? `; still alive: ${survivors.join(', ')}` : ''}`,
    );

  const { files, started } = await partialState(output);
  const name = artifactName({
    prefix: `${core.getInput('artifact-prefix') || 'itest-logs'}-partial`,
    job: env.GITHUB_JOB ?? 'local',
    ...(core.getState('label') ? { label: core.getState('label') } : {}),
    runAttempt: env.GITHUB_RUN_ATTEMPT ?? '1',
    arch: hostArch(),
  });
  const upload = core.getInput('upload-logs') !== 'none';
  const up = upload
    ? await uploadLogs({
        name,
        files,
        rootDir: output,
        retentionDays: Number(core.getInput('retention-days') || 14),
      })
    : undefined;
  if (up?.error) core.warning(`uploading the partial logs failed (${up.error}); they stay in ${output}`);
  const state = (t: StartedTest) =>
    found.running.includes(t.name)
      ? 'was running; its VM was stopped by the post step'
      : t.status
        ? `the guest had reported \`${t.status}\``
        : 'no result from the guest';
  const lines = [
    '## ⚠️ itest did not finish',
    '',
    'The main step was cancelled or crashed before it reported.' +
      (found.pids.length
        ? ` The post step stopped ${found.machines.length} leftover VM(s) (${found.pids.length} processes).`
        : ''),
    '',
    ...(started.length
      ? ['| test | state |', '| --- | --- |', ...started.map((t) => `| ${t.name} | ${state(t)} |`), '']
      : ['No test had started.', '']),
    `What exists in \`${output}\` was kept:`,
    '',
    ...files.map((f) => `- \`${f}\``),
    '',
    files.some((f) => f.endsWith('.export'))
      ? 'A `journal.export` is the raw journal stream: `systemd-journal-remote -o T.journal journal.export` turns it into a journal for `journalctl --file`.\n'
      : '',
    !files.length
      ? 'No logs were written yet.'
      : !up
        ? 'Not uploaded (`upload-logs: none`).'
        : up.error
          ? `Uploading them failed (${up.error}); they stay on the runner.`
          : `Uploaded as artifact \`${name}\`.`,
  ];
  await core.summary.addRaw(lines.join('\n')).write();
}
