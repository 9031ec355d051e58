/**
 * mkosi's own error out of its console output, for a run that ended before the guest reported anything.
 * mkosi's last line is often a hint (`‣ (sandbox command omitted, rerun with --debug ...)`) or cleanup
 * noise; the error is a Python exception's last line, argparse's `mkosi: error:`, mkosi's `‣` line, or,
 * when that line only says that a command failed, that command's own message (QEMU's, a helper script's
 * traceback). Also says whether running the same command again would fail the same way. Pure.
 */

export interface MkosiError {
  /** The error, as mkosi or the failing command printed it. */
  message: string;
  kind: 'usage' | 'missing-module' | 'bad-value' | 'exception' | 'mkosi' | 'qemu';
  /** Running mkosi again the same way fails the same way (missing module, bad option): no infra retry. */
  deterministic: boolean;
}

const TRACEBACK = 'Traceback (most recent call last):';
/** `mkosi: error: ...` (argparse, exit 2). */
const USAGE = /^mkosi: error: (.+)$/;
/** mkosi's log lines; a parenthesised one is a hint about the line before it. */
const MKOSI_LINE = /^\s*‣\s+(.+)$/;
/** mkosi's run(): `"<argv joined>" returned non-zero exit code N.` */
const COMMAND_FAILED = /^"(\S+)(\s[^]*)?" returned non-zero exit code (\d+)\.?$/;
const QEMU_LINE = /^(qemu-system-[\w-]+): (.+)$/;
/** Lines the guest writes on the console: kernel messages, systemd's status lines and greeting. */
const GUEST_LINE = /^\[\s*\d+\.\d+\]\s|^\[\s*(OK|FAILED|DEPEND|TIME|\*+)\s*\]|^Welcome to .+!$/;

/** Errors of the input (options, config, modules, a missing image), not of the moment. */
const DETERMINISTIC_MKOSI = [/ has not been built yet$/, /Unknown setting /, /^Kernel (or UKI )?not found/];
const DETERMINISTIC_QEMU = [
  /: invalid option$/,
  /is not a valid device model name$/,
  /Parameter '[^']+' expects /,
];

interface Exception {
  index: number;
  line: string;
  name: string;
  /** The traceback went through mkosi's config or argument parsing. */
  parsing: boolean;
}

/** The last traceback's exception line: the first unindented line after its frames. */
function lastException(lines: string[]): Exception | undefined {
  const start = lines.lastIndexOf(TRACEBACK);
  if (start < 0) return undefined;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line === '' || /^\s/.test(line)) continue;
    const name = /^([A-Za-z_][\w.]*)(:|$)/.exec(line)?.[1];
    if (!name) return undefined;
    const frames = lines.slice(start + 1, i).join('\n');
    return { index: i, line, name, parsing: /\bparse_config\b|\/argparse\.py"/.test(frames) };
  }
  return undefined;
}

function fromException(e: Exception): MkosiError {
  if (/^(ModuleNotFoundError|ImportError)$/.test(e.name))
    return { message: e.line, kind: 'missing-module', deterministic: true };
  if (e.parsing) return { message: e.line, kind: 'bad-value', deterministic: true };
  return { message: e.line, kind: 'exception', deterministic: false };
}

function lastIndex(lines: string[], re: RegExp, from = 0, to = lines.length): number {
  for (let i = to - 1; i >= from; i--) if (re.test(lines[i] ?? '')) return i;
  return -1;
}

/** `"/usr/bin/qemu-system-x86_64 -machine ..." returned ...` -> `"/usr/bin/qemu-system-x86_64 ..." returned ...`. */
function shortCommand(m: RegExpExecArray): string {
  return `"${m[1]}${m[2] ? ' ...' : ''}" returned non-zero exit code ${m[3]}`;
}

export function mkosiError(consoleTail: string[]): MkosiError | undefined {
  const all = consoleTail.map((l) => l.replace(/\r$/, '').trimEnd());
  // Only what came after the guest's last line is mkosi's; a guest that ran means the failure came later.
  const guest = lastIndex(all, GUEST_LINE);
  const lines = all.slice(guest + 1);
  const settle = (e: MkosiError | undefined) => (e && guest >= 0 ? { ...e, deterministic: false } : e);
  const qemu = (at: number, context?: string): MkosiError => {
    const q = lines[at]!;
    return {
      message: context ? `${q} (${context})` : q,
      kind: 'qemu',
      deterministic: DETERMINISTIC_QEMU.some((re) => re.test(q)),
    };
  };

  const usage = lastIndex(lines, USAGE);
  if (usage >= 0) return settle({ message: lines[usage]!, kind: 'usage', deterministic: true });

  const exception = lastException(lines);
  // mkosi's error is its last `‣` line that is not a parenthesised hint.
  let errorAt = lastIndex(lines, MKOSI_LINE);
  while (errorAt >= 0 && /^\(.*\)$/.test(MKOSI_LINE.exec(lines[errorAt]!)![1]!))
    errorAt = lastIndex(lines, MKOSI_LINE, 0, errorAt);
  if (errorAt < 0 || (exception && exception.index > errorAt)) {
    if (exception) return settle(fromException(exception));
    // mkosi 24 says nothing when QEMU fails: QEMU's own line is the error.
    const q = lastIndex(lines, QEMU_LINE);
    return q >= 0 ? settle(qemu(q)) : undefined;
  }
  const mkosiLine = MKOSI_LINE.exec(lines[errorAt]!)![1]!;
  const failed = COMMAND_FAILED.exec(mkosiLine);
  if (!failed) {
    const deterministic = DETERMINISTIC_MKOSI.some((re) => re.test(mkosiLine));
    return settle({ message: mkosiLine, kind: 'mkosi', deterministic });
  }
  // mkosi only says that a command failed: that command's own last words say why, a helper script's
  // traceback or QEMU's `qemu-system-x86_64: ...`, whichever came last before mkosi's line.
  const context = shortCommand(failed);
  const sinceMkosi = (at: number) => at >= 0 && lastIndex(lines, MKOSI_LINE, at, errorAt) < 0;
  const q = lastIndex(lines, QEMU_LINE, 0, errorAt);
  if (exception && sinceMkosi(exception.index) && exception.index > q) {
    const e = fromException(exception);
    return settle({ ...e, message: `${e.message} (${context})` });
  }
  if (sinceMkosi(q)) return settle(qemu(q, context));
  return settle({ message: context, kind: 'mkosi', deterministic: false });
}
