/**
 * Artifact names: unique per workflow run across matrix jobs, re-runs and architectures, and free of the
 * characters GitHub refuses (" : < > | * ? \r \n \ /). Pure.
 */
export interface ArtifactContext {
  prefix: string;
  job: string;
  /** A matrix/shard label when the job runs more than once per run (e.g. "shard-2"). */
  label?: string;
  runAttempt: string;
  arch: string;
}

const FORBIDDEN = /["':<>|*?\r\n\\/\s]+/g;

export function sanitizeArtifactPart(s: string): string {
  return s.replace(FORBIDDEN, '-').replace(/-+/g, '-').replace(/^-|-$/g, '') || '_';
}

export function artifactName(c: ArtifactContext): string {
  const parts = [c.prefix, c.job, c.label, c.arch, `attempt${c.runAttempt}`].filter((p): p is string =>
    Boolean(p),
  );
  return parts.map(sanitizeArtifactPart).join('-').slice(0, 200);
}
