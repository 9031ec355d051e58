import { createHash } from 'node:crypto';

/**
 * Turns any test name into a safe single path component (and artifact-name fragment): no separators, no
 * characters GitHub forbids in artifact names, no leading dots, bounded length.
 */
export function safeFileName(name: string, maxLength = 100): string {
  let s = name.replace(/[^A-Za-z0-9._@+-]/g, '_').replace(/^\.+/, '_');
  if (s.length === 0) s = '_';
  if (s.length > maxLength) s = s.slice(0, maxLength);
  return s;
}

/**
 * A machine name valid as a hostname label (mkosi/machined require it): lowercase, [a-z0-9-], <= 63 chars.
 * A name cut short ends in a digest of the whole test name, so that two long names with a common start
 * stay apart (names that differ only in case or in characters outside [a-z0-9-] do not: config/test-names.ts
 * refuses those pairs).
 */
export function machineName(testName: string, runId: string, attempt: number): string {
  const base = testName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const suffix = `-${runId}-${attempt}`;
  const full = `itest-${base}`;
  const room = 63 - suffix.length;
  if (full.length <= room) return `${full}${suffix}`;
  const digest = createHash('sha256').update(testName).digest('hex').slice(0, 6);
  return `${full.slice(0, room - digest.length - 1).replace(/-+$/, '')}-${digest}${suffix}`;
}
