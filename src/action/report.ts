/** Writes what the run produced to GitHub: summary, annotations, outputs, JUnit copy and the log artifact. */
import * as core from '@actions/core';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Results } from '../results/model.ts';
import { renderSummary } from './summary.ts';
import { annotations } from './annotations.ts';
import { artifactName } from './artifact-name.ts';
import { filesToUpload, uploadLogs, type UploadOutcome } from './upload.ts';
import type { ActionConfig } from './inputs.ts';

export function runUrl(env: NodeJS.ProcessEnv): string | undefined {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: run } = env;
  return server && repo && run ? `${server}/${repo}/actions/runs/${run}` : undefined;
}

export async function report(
  r: Results,
  cfg: ActionConfig,
  env: NodeJS.ProcessEnv,
  warnings: string[],
  label?: string,
): Promise<UploadOutcome | undefined> {
  let upload: UploadOutcome | undefined;
  if (cfg.uploadLogs !== 'none') {
    const name = artifactName({
      prefix: cfg.artifactPrefix,
      job: env.GITHUB_JOB ?? 'local',
      ...(label ? { label } : {}),
      runAttempt: env.GITHUB_RUN_ATTEMPT ?? '1',
      arch: r.environment.host.arch,
    });
    const url = runUrl(env);
    upload = await uploadLogs({
      name,
      files: filesToUpload(r, cfg.run.outputDir, cfg.uploadLogs),
      rootDir: cfg.run.outputDir,
      retentionDays: cfg.retentionDays,
      ...(url ? { runUrl: url } : {}),
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
      `📦 Logs of ${cfg.uploadLogs} tests: artifact \`${upload.name}\`${upload.url ? ` ([download](${upload.url}))` : ''}`,
      '',
    );
  if (upload?.error)
    extra.push(
      `⚠️ The log upload failed: ${upload.error}. Files left on the runner:`,
      '',
      ...upload.files.map((f) => `- \`${f}\``),
      '',
    );
  if (warnings.length > 0) extra.push('**Warnings**', '', ...warnings.map((w) => `- ${w}`), '');
  if (cfg.summary) {
    const ctx = {
      downloadDir: 'itest-logs',
      ...(env.GITHUB_RUN_ID ? { runId: env.GITHUB_RUN_ID } : {}),
      ...(env.GITHUB_REPOSITORY ? { repository: env.GITHUB_REPOSITORY } : {}),
      ...(upload?.id !== undefined ? { artifactName: upload.name } : {}),
    };
    await core.summary.addRaw(renderSummary(r, ctx, extra)).write();
  }
  if (cfg.annotations) {
    for (const a of annotations(r, warnings)) core[a.level](a.message, { title: a.title });
  }
  const s = r.summary;
  const outputs: Record<string, string | number | boolean> = {
    results: `${cfg.run.outputDir}/results.json`,
    junit: cfg.junitPath ?? `${cfg.run.outputDir}/junit.xml`,
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
    await copyFile(`${cfg.run.outputDir}/junit.xml`, cfg.junitPath);
  }
  return upload;
}
