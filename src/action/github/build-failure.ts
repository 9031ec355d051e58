/**
 * A failed image build, made debuggable from the workflow run: the build log as an artifact (unless
 * `upload-logs: none`), a job summary with the exact mkosi command and the log's last lines, and the step
 * outputs that tell the reusable workflow's report job what happened. Nothing was tested, so this replaces
 * the run's summary; the step still fails with the build's error.
 */
import * as core from '@actions/core';
import { basename, dirname } from 'node:path';
import type { ActionConfig } from '../inputs.ts';
import type { GitHubContext } from './context.ts';
import { artifactName } from './artifact-name.ts';
import { codeBlock, codeSpan, mdText } from './markdown.ts';
import { uploadLogs, type UploadOutcome } from './upload.ts';
import { hostArch } from '../../host/probe.ts';
import type { ImageBuildFailed } from '../../image/ensure-image.ts';

/** A word as a POSIX shell reads it: as it is when it holds nothing the shell would interpret. For display only. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The summary of a failed build: what ran, how it ended, its last lines and where the whole log is. */
export function renderBuildFailure(
  f: Pick<ImageBuildFailed, 'argv' | 'log' | 'code' | 'seconds' | 'lastLines'>,
  upload: UploadOutcome | undefined,
): string {
  const how = f.code === null ? 'was killed by a signal or could not start' : `exited with status ${f.code}`;
  const where =
    upload === undefined
      ? `Not uploaded (\`upload-logs: none\`): the whole log stays on the runner in ${codeSpan(f.log)}.`
      : upload.error
        ? `⚠️ Uploading the log failed (${mdText(upload.error)}): it stays on the runner in ${codeSpan(f.log)}.`
        : `📦 The whole log: artifact ${codeSpan(upload.name)}${upload.url ? ` ([download](${upload.url}))` : ''}, file ${codeSpan(basename(f.log))}.`;
  return [
    '## ❌ itest: the image build failed',
    '',
    `mkosi ${how} after ${f.seconds} s. No test ran.`,
    '',
    'Command:',
    '',
    ...codeBlock([f.argv.map(shellWord).join(' ')], 'sh'),
    '',
    `Last ${f.lastLines.length} line(s) of ${codeSpan(basename(f.log))}:`,
    '',
    ...codeBlock(f.lastLines.length ? f.lastLines : ['(the build wrote nothing)']),
    '',
    where,
    '',
    'The same output is in the log group `image build (mkosi output)` of this step.',
    '',
  ].join('\n');
}

/** Uploads the build log, writes the summary and sets the outputs; upload failures are warnings. */
export async function reportBuildFailure(
  e: ImageBuildFailed,
  cfg: ActionConfig,
  gh: GitHubContext,
  label?: string,
): Promise<UploadOutcome | undefined> {
  let upload: UploadOutcome | undefined;
  if (cfg.uploadLogs !== 'none') {
    upload = await uploadLogs({
      name: artifactName({
        prefix: `${cfg.artifactPrefix}-image-build`,
        job: gh.job,
        ...(label ? { label } : {}),
        runAttempt: gh.runAttempt,
        arch: hostArch(),
      }),
      files: [e.log],
      rootDir: dirname(e.log),
      retentionDays: cfg.retentionDays,
      ...(gh.runUrl ? { runUrl: gh.runUrl } : {}),
    });
    if (upload.error) core.warning(`uploading the build log failed (${upload.error}); it stays in ${e.log}`);
    else core.info(`build log uploaded as artifact ${upload.name}`);
  }
  const done = upload && !upload.error ? upload : undefined;
  core.setOutput('image-build-failed', true);
  core.setOutput('artifact-name', done?.name ?? '');
  core.setOutput('artifact-id', done?.id ?? '');
  core.setOutput('artifact-url', done?.url ?? '');
  if (cfg.summary) await core.summary.addRaw(renderBuildFailure(e, upload)).write();
  return upload;
}
