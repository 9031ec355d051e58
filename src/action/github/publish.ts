/** Publishes what a run produced to GitHub: the log artifact, summary, annotations, outputs and the JUnit copy. */
import * as core from '@actions/core';
import { constants } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Results } from '../../results/model.ts';
import { renderSummary } from './summary.ts';
import { codeSpan, mdText } from './markdown.ts';
import { annotations } from './annotations.ts';
import { artifactName } from './artifact-name.ts';
import { filesToUpload, uploadLogs, type UploadOutcome } from './upload.ts';
import type { GitHubContext } from './context.ts';
import type { ActionConfig } from '../inputs.ts';
import { OutputLayout } from '../../run/output-layout.ts';

export async function publishResults(
  r: Results,
  cfg: ActionConfig,
  gh: GitHubContext,
  warnings: string[],
  label?: string,
): Promise<UploadOutcome | undefined> {
  const layout = new OutputLayout(cfg.run.outputDir);
  let upload: UploadOutcome | undefined;
  if (cfg.uploadLogs !== 'none') {
    const name = artifactName({
      prefix: cfg.artifactPrefix,
      job: gh.job,
      ...(label ? { label } : {}),
      runAttempt: gh.runAttempt,
      arch: r.environment.host.arch,
    });
    upload = await uploadLogs({
      name,
      files: filesToUpload(r, cfg.run.outputDir, cfg.uploadLogs),
      rootDir: cfg.run.outputDir,
      retentionDays: cfg.retentionDays,
      ...(gh.runUrl ? { runUrl: gh.runUrl } : {}),
    });
    // Each test points at the artifact holding its logs (merged reports keep every shard's name).
    if (upload.id !== undefined) {
      const uploaded = new Set(upload.files);
      for (const t of r.tests)
        if (t.attempts.some((a) => [a.files.journal, a.files.console].some((f) => f && uploaded.has(f))))
          t.artifact = upload.name;
    }
    if (upload.error)
      warnings.push(
        `uploading the logs failed (${upload.error}); they stay on the runner in ${cfg.run.outputDir}: ${upload.files.join(', ')}`,
      );
  }
  const extra: string[] = [];
  if (upload?.id !== undefined)
    extra.push(
      `📦 Logs of ${cfg.uploadLogs} tests: artifact ${codeSpan(upload.name)}${upload.url ? ` ([download](${upload.url}))` : ''}`,
      '',
    );
  if (upload?.error)
    extra.push(
      `⚠️ The log upload failed: ${mdText(upload.error)}. Files left on the runner:`,
      '',
      ...upload.files.map((f) => `- ${codeSpan(f)}`),
      '',
    );
  // Warnings quote what mkosi, QEMU and the services said: text, never markdown.
  if (warnings.length > 0) extra.push('**Warnings**', '', ...warnings.map((w) => `- ${mdText(w)}`), '');
  if (cfg.summary) {
    const ctx = {
      downloadDir: 'itest-logs',
      ...(gh.runId ? { runId: gh.runId } : {}),
      ...(gh.repository ? { repository: gh.repository } : {}),
      ...(upload?.id !== undefined ? { artifactName: upload.name } : {}),
    };
    await core.summary.addRaw(renderSummary(r, ctx, extra)).write();
  }
  if (cfg.annotations) {
    for (const a of annotations(r, warnings)) core[a.level](a.message, { title: a.title });
  }
  const s = r.summary;
  const outputs: Record<string, string | number | boolean> = {
    results: layout.results,
    junit: cfg.junitPath ?? layout.junit,
    ok: s.ok,
    total: s.total,
    passed: s.pass,
    failed: s.fail,
    skipped: s.skip,
    'timed-out': s.timeout,
    errors: s.error,
    'cache-hit': r.environment.image.cache === 'hit',
    'cache-key': r.environment.image.key,
    'artifact-name': upload?.id !== undefined ? upload.name : '',
    'artifact-id': upload?.id ?? '',
    'artifact-url': upload?.url ?? '',
  };
  for (const [k, v] of Object.entries(outputs)) core.setOutput(k, v);
  if (cfg.junitPath) {
    await mkdir(dirname(cfg.junitPath), { recursive: true });
    // A fresh file at junit-path, never whatever a link planted there points to.
    await rm(cfg.junitPath, { force: true });
    await copyFile(layout.junit, cfg.junitPath, constants.COPYFILE_EXCL);
  }
  return upload;
}
