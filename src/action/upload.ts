/** Uploads the logs of failed (or all) tests with @actions/artifact. A failure is a warning; files stay on disk. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DefaultArtifactClient } from '@actions/artifact';
import type { Results } from '../results/model.ts';

export interface UploadOutcome {
  name: string;
  files: string[];
  id?: number;
  url?: string;
  error?: string;
}

/** What goes into the artifact: results, JUnit, build log, and every kept journal and console log. */
export function filesToUpload(r: Results, outputDir: string, which: 'failed' | 'all'): string[] {
  const files = ['results.json', 'junit.xml', 'image-build.log'].map((f) => join(outputDir, f));
  for (const t of r.tests) {
    if (which === 'failed' && (t.status === 'pass' || t.status === 'skip')) continue;
    for (const a of t.attempts)
      files.push(...[a.files.journal, a.files.console].filter((f): f is string => Boolean(f)));
  }
  return [...new Set(files)].filter((f) => existsSync(f));
}

export async function uploadLogs(p: {
  name: string;
  files: string[];
  rootDir: string;
  retentionDays: number;
  runUrl?: string;
}): Promise<UploadOutcome> {
  if (p.files.length === 0) return { name: p.name, files: [] };
  try {
    const res = await new DefaultArtifactClient().uploadArtifact(p.name, p.files, p.rootDir, {
      retentionDays: p.retentionDays,
    });
    const out: UploadOutcome = { name: p.name, files: p.files };
    if (res.id !== undefined) out.id = res.id;
    if (res.id !== undefined && p.runUrl) out.url = `${p.runUrl}/artifacts/${res.id}`;
    return out;
  } catch (e) {
    // uploadArtifact rejects (and logs nothing) on failure: say it, and keep going.
    return { name: p.name, files: p.files, error: (e as Error).message };
  }
}
