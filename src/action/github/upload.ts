/**
 * Uploads the logs of failed (or all) tests with @actions/artifact. A failure is a warning; files stay on disk.
 * The upload has a deadline: on a service that accepts requests and never answers, @actions/artifact waits
 * ~15 min on its control plane (3 min socket timeout x 5 attempts) and 5-10 min on a stalled blob upload.
 */
import { existsSync, statSync } from 'node:fs';
import { DefaultArtifactClient } from '@actions/artifact';
import type { Results } from '../../results/model.ts';
import { OutputLayout } from '../../run/output-layout.ts';
import { DeadlineExceeded, FAIL_FAST_CODE, secondsFromEnv, withDeadline } from '../../util/deadline.ts';

/** Overrides the upload deadline (seconds) when the caller does not set one. */
export const UPLOAD_TIMEOUT_ENV = 'ITEST_UPLOAD_TIMEOUT_SECONDS';

/** The default upload deadline for `bytes` of logs: 120 s + 1 s per 5 MiB. */
export function uploadDeadlineSeconds(bytes: number): number {
  return Math.ceil(120 + bytes / (5 * 1024 ** 2));
}

export interface UploadOutcome {
  name: string;
  files: string[];
  id?: number;
  url?: string;
  error?: string;
}

/** What goes into the artifact: results, JUnit, build log, and every kept journal and console log. */
export function filesToUpload(r: Results, outputDir: string, which: 'failed' | 'all'): string[] {
  const layout = new OutputLayout(outputDir);
  const files = layout.runFiles();
  for (const t of r.tests) {
    if (which === 'failed' && (t.status === 'pass' || t.status === 'skip')) continue;
    for (const a of t.attempts)
      files.push(...[a.files.journal, a.files.console].filter((f): f is string => Boolean(f)));
    // A journal stream journal-remote could not convert is kept beside the console log: the only copy.
    const f = layout.test(t.name);
    files.push(f.keptExport, ...t.attempts.map((a) => f.attempt(a.attempt).keptExport));
  }
  return [...new Set(files)].filter((f) => existsSync(f));
}

export async function uploadLogs(p: {
  name: string;
  files: string[];
  rootDir: string;
  retentionDays: number;
  runUrl?: string;
  /** Give up after this many seconds; default $ITEST_UPLOAD_TIMEOUT_SECONDS, else uploadDeadlineSeconds(size). */
  timeoutSeconds?: number;
  env?: NodeJS.ProcessEnv;
}): Promise<UploadOutcome> {
  if (p.files.length === 0) return { name: p.name, files: [] };
  const seconds =
    p.timeoutSeconds ??
    secondsFromEnv(p.env ?? process.env, UPLOAD_TIMEOUT_ENV) ??
    uploadDeadlineSeconds(
      p.files.reduce((n, f) => n + (statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0),
    );
  try {
    // uploadArtifact logs nothing of its own failures: the abandoned call may fail fast without misleading anyone.
    const res = await withDeadline(
      `upload of artifact ${p.name}`,
      seconds,
      () =>
        new DefaultArtifactClient().uploadArtifact(p.name, p.files, p.rootDir, {
          retentionDays: p.retentionDays,
        }),
      FAIL_FAST_CODE,
    );
    const out: UploadOutcome = { name: p.name, files: p.files };
    if (res.id !== undefined) out.id = res.id;
    if (res.id !== undefined && p.runUrl) out.url = `${p.runUrl}/artifacts/${res.id}`;
    return out;
  } catch (e) {
    // uploadArtifact rejects (and logs nothing) on failure: say it, and keep going.
    const error =
      e instanceof DeadlineExceeded
        ? `gave up after ${seconds} s, the artifact service did not finish in time`
        : (e as Error).message;
    return { name: p.name, files: p.files, error };
  }
}
