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

/** A machine name valid as a hostname label (mkosi/machined require it): lowercase, [a-z0-9-], <= 63 chars. */
export function machineName(testName: string, runId: string, attempt: number): string {
  const base = testName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const suffix = `-${runId}-${attempt}`;
  const head = `itest-${base}`.slice(0, 63 - suffix.length).replace(/-+$/, '');
  return `${head}${suffix}`;
}
