/**
 * Whether a tar archive may be unpacked into one directory, judged from GNU tar's own listing of it
 * (`tar -t -v --numeric-owner --quoting-style=c`, LC_ALL=C): the names are tar's interpretation, the
 * same the extraction then uses (pax and GNU long names included). Pure: the listing comes in by line.
 *
 * Names are byte strings (one char per byte, latin1), compared byte for byte with the directory.
 */

export interface TarMember {
  /** The first letter of tar's mode column: '-' file, 'd' directory, 'l' symlink, 'h' hard link, ... */
  type: string;
  name: string;
  /** The target of a symlink, or the member a hard link links to. */
  link?: string;
}

const ESCAPES: Record<string, number> = {
  '\\': 0x5c,
  '"': 0x22,
  '?': 0x3f,
  "'": 0x27,
  a: 7,
  b: 8,
  f: 12,
  n: 10,
  r: 13,
  t: 9,
  v: 11,
};

/** Reads the C-quoted string that starts at `line[at]` (a '"'); returns its bytes and where it ended. */
function cString(line: string, at: number): { value: string; end: number } | undefined {
  if (line[at] !== '"') return undefined;
  let value = '';
  for (let i = at + 1; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"') return { value, end: i + 1 };
    if (c !== '\\') {
      value += c;
      continue;
    }
    const octal = /^[0-7]{1,3}/.exec(line.slice(i + 1, i + 4));
    if (octal) {
      value += String.fromCharCode(parseInt(octal[0], 8) & 0xff);
      i += octal[0].length;
      continue;
    }
    const code = ESCAPES[line[i + 1] ?? ''];
    if (code === undefined) return undefined;
    value += String.fromCharCode(code);
    i++;
  }
  return undefined;
}

/**
 * One line of the verbose listing: `<mode> <uid>/<gid> <size> <date> <time> "<name>"` and, for links,
 * ` -> "<target>"` or ` link to "<target>"`. With numeric owners no column before the name can hold a
 * quote, so the name starts at the first one. Undefined when the line is not of that form.
 */
export function parseListingLine(line: string): TarMember | undefined {
  const type = line[0];
  const name = cString(line, line.indexOf('"'));
  if (!type || !name) return undefined;
  const rest = line.slice(name.end);
  if (rest === '') return { type, name: name.value };
  const arrow = / -> |^ link to /.exec(rest);
  if (arrow?.index !== 0) return undefined;
  const link = cString(rest, arrow[0].length);
  if (!link || link.end !== rest.length) return undefined;
  if ((type === 'l') !== (arrow[0] === ' -> ')) return undefined;
  return { type, name: name.value, link: link.value };
}

/** The components of a path, without the ones the kernel skips ('' and '.'). */
function components(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/** A byte string for display: UTF-8 decoded, quoted, control characters escaped, at most 200 chars. */
export function showName(name: string): string {
  const text = Buffer.from(name, 'latin1').toString('utf8');
  const quoted = JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text);
  // JSON leaves U+2028/2029 and C1 controls as they are.
  return quoted.replace(
    /[\u0080-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const KINDS: Record<string, string> = {
  c: 'a character device',
  b: 'a block device',
  p: 'a FIFO',
  s: 'a socket',
  V: 'a volume label',
  M: 'a multi-volume continuation',
  C: 'a contiguous file',
};

/**
 * Checks members in archive order. `prefix` is the directory as the archive spells it relative to tar's
 * -C directory (what @actions/cache writes: path.relative(workspace, dir)), as a byte string.
 *
 * Sound without knowing what is on disk, given that the directory is empty when tar starts:
 * - every name is `prefix/...` with no '..' after the prefix, never absolute (the prefix is the
 *   directory's own place, wherever the runner's layout puts it);
 * - nothing is written below a symlink of the archive, so every symlink's own directory is real;
 * - a symlink's target is relative and climbs ('..' only at its start) no higher than the directory:
 *   by induction it lands inside however other symlinks resolve;
 * - a hard link links to a file restored before it (not to a symlink, which would then resolve from
 *   elsewhere); only files, directories and links are restored; the directory itself is a directory.
 */
export class MemberCheck {
  private readonly prefix: string[];
  private readonly symlinks = new Set<string>();
  private readonly files = new Set<string>();
  count = 0;

  /**
   * `anyLinkTarget`: symbolic links may point anywhere (an OS tree's /etc/alternatives/... links are
   * absolute); still nothing of the archive is written through one, so extraction stays inside. For an
   * archive whose tree is only ever used from inside itself (mkosi's cached trees), never for an image
   * directory whose links the host would follow.
   */
  constructor(
    prefix: string,
    private readonly o: { anyLinkTarget?: boolean } = {},
  ) {
    this.prefix = components(prefix);
  }

  /** The member's path below the directory, or why it is not below it. */
  private below(name: string): string[] | string {
    if (name.startsWith('/')) return 'has an absolute name';
    const c = components(name);
    if (c.length < this.prefix.length || this.prefix.some((p, i) => c[i] !== p))
      return 'lies outside the image directory';
    const rel = c.slice(this.prefix.length);
    if (rel.includes('..')) return "has a '..' component";
    return rel;
  }

  private throughSymlink(rel: string[]): string | undefined {
    for (let i = 1; i < rel.length; i++) {
      const up = rel.slice(0, i).join('/');
      if (this.symlinks.has(up)) return up;
    }
    return undefined;
  }

  /** Undefined when `m` may be restored, else why not (naming the member). */
  add(m: TarMember): string | undefined {
    this.count++;
    const refuse = (why: string) => `member ${showName(m.name)} ${why}`;
    const rel = this.below(m.name);
    if (typeof rel === 'string') return refuse(rel);
    const kind = KINDS[m.type];
    if (kind || !'-dlh'.includes(m.type)) return refuse(`is ${kind ?? `of unknown type '${m.type}'`}`);
    if (rel.length === 0 && m.type !== 'd') return refuse('replaces the image directory itself');
    const via = this.throughSymlink(rel);
    if (via !== undefined) return refuse(`is written through the symbolic link ${showName(via)}`);
    const path = rel.join('/');
    if (m.type === 'l') {
      const target = m.link ?? '';
      if (target === '') return refuse('is a symbolic link without a target');
      if (this.o.anyLinkTarget) {
        this.symlinks.add(path);
        this.files.delete(path);
        return undefined;
      }
      if (target.startsWith('/'))
        return refuse(`is a symbolic link to the absolute path ${showName(target)}`);
      const t = components(target);
      const climbs = t.findIndex((c) => c !== '..');
      const up = climbs === -1 ? t.length : climbs;
      if (t.slice(up).includes('..') || up > rel.length - 1)
        return refuse(`is a symbolic link to ${showName(target)}, outside the image directory`);
      this.symlinks.add(path);
      this.files.delete(path);
    } else if (m.type === 'h') {
      const target = this.below(m.link ?? '');
      const show = showName(m.link ?? '');
      if (typeof target === 'string') return refuse(`is a hard link to ${show}, which ${target}`);
      const t = target.join('/');
      if (this.symlinks.has(t) || this.throughSymlink(target) !== undefined || !this.files.has(t))
        return refuse(`is a hard link to ${show}, not to a file restored before it`);
      this.files.add(path);
    } else if (m.type === '-') this.files.add(path);
    else this.files.delete(path);
    return undefined;
  }
}
