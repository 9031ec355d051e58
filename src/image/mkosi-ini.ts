/**
 * mkosi's config file syntax (systemd's unit-file flavour of INI), read as assignments in order. Pure.
 * Hand-written: the INI libraries on npm know neither its indented continuation lines (a `Packages=`
 * list over many lines) nor that a key may repeat (each assignment adds to a list).
 */

export interface Assignment {
  section: string;
  key: string;
  /** The value, continuation lines joined with `\n`, comments and blank lines dropped. */
  value: string;
  /** 1-based line of the key. */
  line: number;
}

export function parseMkosiIni(text: string): Assignment[] {
  const out: Assignment[] = [];
  let section = '';
  let current: Assignment | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (!trimmed || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    // An indented line continues the value before it (mkosi's lists).
    if (/^\s/.test(raw) && current) {
      current.value = current.value ? `${current.value}\n${trimmed}` : trimmed;
      continue;
    }
    const header = /^\[([^\]]+)\]$/.exec(trimmed);
    if (header) {
      section = header[1]!.trim();
      current = undefined;
      continue;
    }
    const eq = trimmed.indexOf('=');
    if (eq <= 0) {
      current = undefined;
      continue;
    }
    current = { section, key: trimmed.slice(0, eq).trim(), value: trimmed.slice(eq + 1).trim(), line: i + 1 };
    out.push(current);
  }
  return out;
}
