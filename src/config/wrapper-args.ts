/**
 * Maps the argument vector of systemd's integration-test-wrapper.py (as meson registers each test) to a
 * TestSpec. Read from the wrapper and test/integration-tests/meson.build of systemd 257: wrapper options
 * before `--`, mkosi options after it. Every argument is understood or refused with the test's name and
 * the argument. Pure: credential files are returned as paths for the caller to read.
 */
import { isAbsolute, resolve } from 'node:path';
import { mkosiArgProblems } from './mkosi-args.ts';
import { TEST_DEFAULTS, type TestSpec } from './test-spec.ts';
import { SETTINGS } from './settings.ts';
import { shellWords } from '../util/shell-words.ts';

type Kind = 'string' | 'int' | 'bool';

/** The wrapper's options (argparse, v257; --timeout, --slow and --tpm from later versions). */
const WRAPPER_OPTIONS: Record<string, { kind: Kind; required?: boolean }> = {
  '--mkosi': { kind: 'string' },
  '--meson-source-dir': { kind: 'string', required: true },
  '--meson-build-dir': { kind: 'string', required: true },
  '--name': { kind: 'string', required: true },
  '--unit': { kind: 'string', required: true },
  '--storage': { kind: 'string', required: true },
  '--firmware': { kind: 'string', required: true },
  '--exit-code': { kind: 'int', required: true },
  '--coredump-exclude-regex': { kind: 'string', required: true },
  '--sanitizer-exclude-regex': { kind: 'string', required: true },
  '--timeout': { kind: 'int' },
  '--slow': { kind: 'bool' },
  '--vm': { kind: 'bool' },
  '--rtc': { kind: 'bool' },
  '--skip': { kind: 'bool' },
  '--tpm': { kind: 'bool' },
};

export type WrapperOptions = Record<string, string | number | boolean>;

/** A wrapper argument vector split into its options (by name, without dashes) and the mkosi arguments. */
export function parseWrapperArgs(
  test: string,
  args: readonly string[],
): { opts: WrapperOptions; mkosi: string[] } {
  const opts: WrapperOptions = {};
  const fail = (what: string): never => {
    throw new Error(`test ${test}: ${what}`);
  };
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    const eq = arg.indexOf('=');
    const name = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg;
    const negated = name.startsWith('--no-') && WRAPPER_OPTIONS[`--${name.slice(5)}`]?.kind === 'bool';
    const spec = WRAPPER_OPTIONS[negated ? `--${name.slice(5)}` : name];
    if (!spec)
      fail(
        `unknown argument ${JSON.stringify(arg)} of integration-test-wrapper.py (itest knows ${Object.keys(WRAPPER_OPTIONS).join(', ')}, then -- and mkosi's options)`,
      );
    const key = (negated ? name.slice(5) : name.slice(2)).replace(/-/g, '_');
    if (spec!.kind === 'bool') {
      if (eq > 0) fail(`${JSON.stringify(arg)}: ${name} takes no value`);
      opts[key] = !negated;
      continue;
    }
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (i + 1 < args.length) value = args[++i]!;
    else return fail(`${name} needs a value`);
    if (spec!.kind === 'int') {
      if (!/^-?\d+$/.test(value)) fail(`${name} ${JSON.stringify(value)} is not a whole number`);
      opts[key] = Number(value);
    } else opts[key] = value;
  }
  for (const [name, s] of Object.entries(WRAPPER_OPTIONS))
    if (s.required && opts[name.slice(2).replace(/-/g, '_')] === undefined) fail(`${name} is missing`);
  return { opts, mkosi: args.slice(i + 1) };
}

/** What the mkosi arguments after `--` become: a field of the spec, or a mkosi option itest passes on. */
export interface MkosiPart {
  credentials: Record<string, string>;
  /** Credentials mkosi would read from a file (absolute paths): the name is the file's. */
  credentialFiles: string[];
  qemuArgs: string[];
  kernelCmdline: string[];
  mkosiArgs: string[];
}

/**
 * mkosi's options in systemd's meson.build. Those that set what itest sets itself are mapped to the spec;
 * the VM options (--drive, --runtime-size: a bigger ephemeral copy, --runtime-build-sources) go to mkosi
 * as they are; everything else goes through the refused-options check of a manifest's mkosi-args.
 */
const MAPPED = new Set(['--credential', '--qemu-args', '--kernel-command-line-extra']);

export function mapMkosiArgs(test: string, args: readonly string[], cwd: string): MkosiPart {
  const out: MkosiPart = {
    credentials: {},
    credentialFiles: [],
    qemuArgs: [],
    kernelCmdline: [],
    mkosiArgs: [],
  };
  const fail = (what: string): never => {
    throw new Error(`test ${test}: ${what}`);
  };
  const words = (name: string, value: string): string[] => {
    try {
      return shellWords(value);
    } catch (e) {
      return fail(`${name} ${JSON.stringify(value)}: ${(e as Error).message}`);
    }
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!MAPPED.has(name)) {
      out.mkosiArgs.push(arg);
      continue;
    }
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (i + 1 < args.length) value = args[++i]!;
    else return fail(`mkosi argument ${name} needs a value`);
    if (name === '--qemu-args') out.qemuArgs.push(...words(name, value));
    else if (name === '--kernel-command-line-extra') out.kernelCmdline.push(value);
    else
      for (const w of words(name, value)) {
        // mkosi: NAME=VALUE, or a file whose name is the credential's (values split like a shell's words).
        const at = w.indexOf('=');
        if (at > 0) out.credentials[w.slice(0, at)] = w.slice(at + 1);
        else if (at < 0) out.credentialFiles.push(isAbsolute(w) ? w : resolve(cwd, w));
        else fail(`--credential ${JSON.stringify(w)}: no credential name before "="`);
      }
  }
  // The rest goes to mkosi as a manifest's mkosi-args would: what would outlive the test is refused.
  const problem = mkosiArgProblems(out.mkosiArgs)[0];
  if (problem) fail(`mkosi argument ${problem.message}`);
  return out;
}

/** One test of `meson introspect --tests`, the fields itest reads. */
export interface MesonTest {
  name: string;
  cmd: string[];
  /** Seconds; 0 = no timeout. */
  timeout: number;
  suite: string[];
  workdir: string | null;
  env: Record<string, string>;
}

/** Whether meson runs this test through systemd's wrapper. */
export function isWrapperTest(t: Pick<MesonTest, 'cmd'>): boolean {
  return /(^|\/)integration-test-wrapper\.py$/.test(t.cmd[0] ?? '');
}

/** Whether meson runs itest itself (`itest test NAME`, or `node .../cli/index.js test NAME`). */
export function isItestTest(t: Pick<MesonTest, 'cmd'>): boolean {
  const [exe = '', script = ''] = t.cmd;
  return /(^|\/)itest$/.test(exe) || (/(^|\/)node$/.test(exe) && /(^|\/)cli\/index\.js$/.test(script));
}

/** What systemd's wrapper adds to every test's kernel command line (not on a terminal), as it does. */
export const WRAPPER_CMDLINE = (name: string): string[] => [
  'systemd.hostname=H',
  `SYSTEMD_UNIT_PATH=/usr/lib/systemd/tests/testdata/${name}.units:/usr/lib/systemd/tests/testdata/units:`,
  'systemd.mask=systemd-networkd-wait-online.service',
  'systemd.mask=serial-getty@.service',
  'systemd.show_status=error',
  'systemd.crash_shell=0',
  'loglevel=6',
];

export interface ImportedTest {
  spec: TestSpec;
  credentialFiles: string[];
  /** The wrapper's --meson-source-dir: where systemd's mkosi/ config is found. */
  sourceDir: string;
}

const { min: MIN_TIMEOUT, max: MAX_TIMEOUT } = SETTINGS.timeout.bounds;

/**
 * One meson test run through the wrapper, as a TestSpec. `now` fixes --rtc's clock (the wrapper sets the
 * guest's RTC to the host's UTC time when it starts mkosi). Throws an Error naming the test and argument.
 */
export function wrapperTestSpec(t: MesonTest, cwd: string, now: Date): ImportedTest {
  const { opts, mkosi } = parseWrapperArgs(t.name, t.cmd.slice(1));
  const name = String(opts.name);
  const part = mapMkosiArgs(name, mkosi, t.workdir ?? cwd);
  // --timeout (later wrappers) wins over meson's; 0 from meson means none, which itest does not have.
  const timeout =
    typeof opts.timeout === 'number' ? opts.timeout : t.timeout > 0 ? t.timeout : TEST_DEFAULTS.timeout;
  if (timeout < MIN_TIMEOUT || timeout > MAX_TIMEOUT)
    throw new Error(`test ${name}: timeout ${timeout} s is outside ${MIN_TIMEOUT} to ${MAX_TIMEOUT} s`);
  const rtc = opts.rtc === true ? ['-rtc', `base=${now.toISOString().slice(0, 19)}`] : [];
  const coredump = String(opts.coredump_exclude_regex);
  const sanitizer = String(opts.sanitizer_exclude_regex);
  const spec: TestSpec = {
    name,
    unit: String(opts.unit),
    timeout,
    exitStatus: Number(opts.exit_code),
    skipStatus: TEST_DEFAULTS.skipStatus,
    shouldFail: false,
    kernelCmdline: [...WRAPPER_CMDLINE(name), ...part.kernelCmdline],
    // The wrapper passes --storage as journald's storage credential.
    credentials: { 'journal.storage': String(opts.storage), ...part.credentials },
    mkosiArgs: ['--runtime-network=none', ...part.mkosiArgs],
    qemuArgs: [...rtc, ...part.qemuArgs],
    ram: TEST_DEFAULTS.ram,
    retries: TEST_DEFAULTS.retries,
    infraRetries: TEST_DEFAULTS.infraRetries,
    tags: t.suite,
    failOnCoredump: true,
    failOnSanitizer: true,
    // linux-noinitrd needs a kernel with virtio-blk and ext4 built in; the wrapper boots with the initrd
    // (linux) on every distribution but Fedora rawhide and Arch, and so does itest.
    firmware: opts.firmware === 'linux-noinitrd' ? 'linux' : String(opts.firmware),
    vm: opts.vm === true,
    skipWhenQemuKilled: opts.exit_code !== 247,
    source: 'meson',
  };
  if (coredump) spec.coredumpExclude = coredump;
  if (sanitizer) spec.sanitizerExclude = sanitizer;
  if (opts.slow === true) spec.slow = true;
  if (opts.skip === true) spec.skip = "meson's requirements for the test were not met (--skip)";
  return { spec, credentialFiles: part.credentialFiles, sourceDir: String(opts.meson_source_dir) };
}
