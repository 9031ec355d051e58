/**
 * Reading files a user (or another job) hands itest: bounded in size, regular files only, JSON checked
 * against its schema, and every failure a UserError that names the file and the field.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { INPUT_LIMITS } from './settings.ts';
import { UserError } from '../util/errors.ts';

const MiB = (n: number) => `${Math.round((n / 1024 ** 2) * 10) / 10} MiB`;

/**
 * The text of a regular file of at most maxBytes. Devices and FIFOs are refused unread (/dev/zero never
 * ends; opened non-blocking, a FIFO without a writer does not hang); the read stops one byte past the
 * cap, whatever the file grows to. fs errors are rethrown as they are, for the caller's own words (a
 * missing manifest has a fix of its own).
 */
export async function readCapped(path: string, maxBytes: number, what: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new UserError(`${path}: not a regular file; ${what} must be one`);
    const tooBig = (size: number) =>
      new UserError(
        `${path}: ${what} of ${MiB(size)} is larger than the ${MiB(maxBytes)} itest reads. Fix: point itest at the right file (the cap keeps a broken or hostile one from running itest out of memory)`,
      );
    if (st.size > maxBytes) throw tooBig(st.size);
    // Sized by the file, plus a byte to see it grow past the cap while it is read.
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
      length += bytesRead;
      if (length > maxBytes) throw tooBig(length);
    }
    return Buffer.concat(chunks, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** readCapped for a file given by a setting: every failure, a missing file too, is a UserError. */
export async function readInputFile(path: string, maxBytes: number, what: string, label = path) {
  try {
    return await readCapped(path, maxBytes, what);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${label}: cannot read ${what}: ${(e as Error).message}`);
  }
}

/** The deepest nesting of a parsed JSON value, counted without recursion (JSON.parse has none either). */
function depthOver(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d >= limit) return true;
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return false;
}

/** JSON text parsed, or a UserError naming origin, with the hint of what to pass instead. */
export function parseJsonInput(text: string, origin: string, hint: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${origin}: not JSON (${(e as Error).message}); ${hint}`);
  }
  if (depthOver(value, INPUT_LIMITS.jsonDepth))
    throw new UserError(`${origin}: nested deeper than ${INPUT_LIMITS.jsonDepth} levels; ${hint}`);
  return value;
}

/** A JSON pointer (/tests/3/name) as a field (tests[3].name). */
export function fieldOf(instancePath: string, extra?: string): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  const field = parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
  return field || '(root)';
}

/** A value as a message shows it: JSON, cut short. */
export function preview(value: unknown, max = 60): string {
  // JSON has no Infinity or NaN (YAML's .inf and .nan): it would show them as null.
  const s = typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/** One schema violation in words: field, what is wrong, and what was there. */
export function schemaProblem(e: ErrorObject, data: unknown): string {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties')
    return `${fieldOf(e.instancePath, String(p.additionalProperty))}: unknown field`;
  if (e.keyword === 'required')
    return `${fieldOf(e.instancePath, String(p.missingProperty))}: missing required field`;
  let got: unknown = data;
  for (const part of e.instancePath.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    got = got !== null && typeof got === 'object' ? (got as Record<string, unknown>)[key] : undefined;
  }
  const allowed = Array.isArray(p.allowedValues) ? ` (${p.allowedValues.join(', ')})` : '';
  return `${fieldOf(e.instancePath)}: ${e.message ?? 'is invalid'}${allowed} (got ${preview(got)})`;
}

/** Validates data; the first violation becomes a UserError: origin, what it is not, the field, the fix. */
export function checkSchema<T>(
  validate: ValidateFunction,
  data: unknown,
  origin: string,
  notA: string,
  fix: string,
): T {
  if (!validate(data)) {
    const first = validate.errors?.[0];
    throw new UserError(`${origin}: ${notA}: ${first ? schemaProblem(first, data) : 'invalid'}; ${fix}`);
  }
  return data as T;
}
