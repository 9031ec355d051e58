/**
 * The action's post step: after a cancel or crash of the main step, stop leftover VMs and upload whatever
 * logs exist, with a short summary. Does nothing when the main step finished its report.
 */
import * as core from '@actions/core';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../run/process.ts';
import { uploadLogs } from './upload.ts';
import { artifactName } from './artifact-name.ts';
import { hostArch } from '../host/probe.ts';

export async function post(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (core.getState('done') === 'true') return;
  const output = core.getState('output');
  // VMs started by itest carry --machine=itest-...; mkosi and QEMU both show it on their command line.
  const killed = await runCommand(['pkill', '-KILL', '-f', '--machine=itest-'], { timeoutMs: 10_000 });
  if (killed.code === 0) core.info('post: stopped leftover itest VMs');
  if (!output) return;
  const files = (await readdir(output).catch(() => [] as string[]))
    .filter((f) => /\.(journal|console\.log|json|xml|log)$/.test(f))
    .map((f) => join(output, f));
  const name = artifactName({
    prefix: `${core.getInput('artifact-prefix') || 'itest-logs'}-partial`,
    job: env.GITHUB_JOB ?? 'local',
    runAttempt: env.GITHUB_RUN_ATTEMPT ?? '1',
    arch: hostArch(),
  });
  const up = await uploadLogs({
    name,
    files,
    rootDir: output,
    retentionDays: Number(core.getInput('retention-days') || 14),
  });
  const lines = [
    '## ⚠️ itest did not finish',
    '',
    'The main step was cancelled or crashed before it reported. What exists was kept:',
    '',
    ...files.map((f) => `- \`${f}\``),
    '',
    up.error
      ? `Uploading them failed (${up.error}); they stay on the runner.`
      : files.length
        ? `Uploaded as artifact \`${name}\`.`
        : 'No logs were written yet.',
  ];
  await core.summary.addRaw(lines.join('\n')).write();
}
