/** The image cache key: a stable digest over every hash input. Pure. */
import { createHash } from 'node:crypto';
import type { FileInput } from './hash-inputs.ts';

export interface HashMeta {
  mkosiVersion: string;
  architecture: string;
  /** A user string mixed into the key (e.g. to force a rebuild, or a distro snapshot date). */
  userKey: string;
  /** Key prefix, also the Actions cache scope name. */
  prefix: string;
}

export interface HashInputLine {
  kind: string;
  name: string;
  value: string;
}

/** A key's first lines: its format, then what every key depends on. */
export function metaLines(format: string, meta: HashMeta): HashInputLine[] {
  return [
    { kind: 'meta', name: 'format', value: format },
    { kind: 'meta', name: 'mkosi-version', value: meta.mkosiVersion },
    { kind: 'meta', name: 'architecture', value: meta.architecture },
    { kind: 'meta', name: 'user-key', value: meta.userKey },
  ];
}

/** One file input as a key line: kind, path, mode and digest. */
export function fileLine(f: FileInput): HashInputLine {
  const mode = f.kind === 'file' ? (f.executable ? '755' : '644') : f.kind === 'dir' ? 'dir' : 'link';
  return { kind: f.kind, name: f.path, value: f.kind === 'dir' ? mode : `${mode} ${f.digest}` };
}

/** Inputs in the order every key hashes them. */
export const byPath = (files: FileInput[]): FileInput[] =>
  [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

/** The ordered lines the digest is computed over; `itest hash --explain` prints exactly these. */
export function hashLines(files: FileInput[], meta: HashMeta): HashInputLine[] {
  return [...metaLines('itest-image-key/1', meta), ...byPath(files).map(fileLine)];
}

export function digestLines(lines: HashInputLine[]): string {
  const h = createHash('sha256');
  // NUL-separated fields, newline-terminated records: no two different input lists serialize alike.
  for (const l of lines) h.update(`${l.kind}\0${l.name}\0${l.value}\n`);
  return h.digest('hex');
}

/** `<prefix>-<arch>-mkosi<version>-<digest>`: readable, <= 512 chars, no commas (Actions cache rules). */
export function imageKey(
  files: FileInput[],
  meta: HashMeta,
): { key: string; digest: string; lines: HashInputLine[] } {
  const lines = hashLines(files, meta);
  const digest = digestLines(lines);
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');
  return {
    key: `${clean(meta.prefix)}-${clean(meta.architecture)}-mkosi${clean(meta.mkosiVersion)}-${digest.slice(0, 32)}`,
    digest,
    lines,
  };
}
