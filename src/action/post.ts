/**
 * The action's post step: after a cancel or crash of the main step, stop what the main step had started
 * and left running (its VMs and image build, as it recorded them: runner/started.ts), upload whatever
 * logs exist, and say in the job summary which tests had started. Does nothing when the main step
 * finished its report (state `done`). What it knows of the run comes from the main step's state and
 * the inputs parsed as main parsed them.
 */
import * as core from '@actions/core';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseInputs, type ActionConfig } from './inputs.ts';
import { getDone, getLabel, getOutputDir, getStartedFile } from './state.ts';
import { readContext, type GitHubContext } from './github/context.ts';
import { artifactName } from './github/artifact-name.ts';
import { uploadLogs, type UploadOutcome } from './github/upload.ts';
import { codeSpan, mdText } from './github/markdown.ts';
import { stopLeftovers } from './runner/leftovers.ts';
import { readStarted } from './runner/started.ts';
import { hostArch } from '../host/probe.ts';
import { OutputLayout } from '../run/output-layout.ts';

export interface StartedTest {
  /** The test's file name base (its name, made safe for paths). */
  name: string;
  /** The guest's status line, when it had reported. */
  status?: string;
}

/** What the output directory holds: the files worth keeping and the tests that had started. */
export async function partialState(outputDir: string): Promise<{ files: string[]; started: StartedTest[] }> {
  const layout = new OutputLayout(outputDir);
  const top = await readdir(outputDir).catch(() => [] as string[]);
  const files = top
    .filter((f) => OutputLayout.isOutputFile(f))
    .sort()
    .map((f) => join(outputDir, f));
  const started: StartedTest[] = [];
  const names = new Set([
    ...top.flatMap((f) => {
      const file = OutputLayout.parse(f);
      return file?.kind === 'console' ? [file.test] : [];
    }),
    ...(await readdir(layout.workRoot).catch(() => [] as string[])),
  ]);
  for (const name of [...names].sort()) {
    const test = layout.test(name);
    // Serial transport: the journal is still the raw export stream until the run converts it.
    if (((await stat(test.journalExport).catch(() => undefined))?.size ?? 0) > 0)
      files.push(test.journalExport);
    const status = (await readFile(test.status, 'utf8').catch(() => ''))
      .trim()
      .split('\n')
      .filter(Boolean)
      .pop();
    started.push({ name, ...(status ? { status } : {}) });
  }
  return { files, started };
}

/** The inputs as main parsed them (they parsed then, so they parse now); undefined, with a warning, if not. */
function inputs(gh: GitHubContext, env: NodeJS.ProcessEnv): ActionConfig | undefined {
  try {
    return parseInputs((n) => core.getInput(n), gh, env);
  } catch (e) {
    core.warning(`post: the inputs no longer parse (${(e as Error).message}); nothing is uploaded`);
    return undefined;
  }
}

/** The partial artifact, named as the main step names its own, with `-partial` after the prefix. */
function uploadPartial(
  cfg: ActionConfig,
  gh: GitHubContext,
  output: string,
  files: string[],
): Promise<UploadOutcome> {
  const label = getLabel();
  const name = artifactName({
    prefix: `${cfg.artifactPrefix}-partial`,
    job: gh.job,
    ...(label ? { label } : {}),
    runAttempt: gh.runAttempt,
    arch: hostArch(),
  });
  return uploadLogs({ name, files, rootDir: output, retentionDays: cfg.retentionDays });
}

export async function post(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (getDone()) return;
  const output = getOutputDir();
  if (!output) return; // The main step stopped before it knew where results go: nothing started.

  const record = getStartedFile();
  const found = await stopLeftovers(await readStarted(record));
  if (!record) core.info('post: the main step recorded nothing it started, so no process is stopped');
  if (found.pids.length > 0)
    core.info(
      `post: stopped ${found.pids.length} leftover process(es) of ${found.machines.length} VM(s)` +
        `${found.machines.length ? `: ${found.machines.join(', ')}` : ''}` +
        `${found.build ? ' and the image build' : ''}` +
        `${found.survivors.length ? `; still alive: ${found.survivors.join(', ')}` : ''}`,
    );
  if (record) await rm(record, { force: true });

  const { files, started } = await partialState(output);
  const gh = readContext(env);
  const cfg = inputs(gh, env);
  const up = cfg && cfg.uploadLogs !== 'none' ? await uploadPartial(cfg, gh, output, files) : undefined;
  if (up?.error) core.warning(`uploading the partial logs failed (${up.error}); they stay in ${output}`);
  const state = (t: StartedTest) =>
    found.running.includes(t.name)
      ? 'was running; its VM was stopped by the post step'
      : t.status
        ? `the guest had reported ${codeSpan(t.status, { cell: true })}`
        : 'no result from the guest';
  const lines = [
    '## ⚠️ itest did not finish',
    '',
    'The main step was cancelled or crashed before it reported.' +
      (found.pids.length
        ? ` The post step stopped ${found.machines.length} leftover VM(s)${found.build ? ' and the image build' : ''} (${found.pids.length} processes).`
        : ''),
    '',
    ...(started.length
      ? [
          '| test | state |',
          '| --- | --- |',
          ...started.map((t) => `| ${mdText(t.name)} | ${state(t)} |`),
          '',
        ]
      : ['No test had started.', '']),
    `What exists in ${codeSpan(output)} was kept:`,
    '',
    ...files.map((f) => `- ${codeSpan(f)}`),
    '',
    files.some((f) => f.endsWith('.export'))
      ? 'A `journal.export` is the raw journal stream: `systemd-journal-remote -o T.journal journal.export` turns it into a journal for `journalctl --file`.\n'
      : '',
    !files.length
      ? 'No logs were written yet.'
      : !up
        ? `Not uploaded (${cfg ? '`upload-logs: none`' : 'the inputs no longer parse'}).`
        : up.error
          ? `Uploading them failed (${mdText(up.error)}); they stay on the runner.`
          : `Uploaded as artifact ${codeSpan(up.name)}.`,
  ];
  await core.summary.addRaw(lines.join('\n')).write();
}
