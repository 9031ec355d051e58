/**
 * Every setting of a run, once: how each front door spells it (CLI flag, action input), what it means
 * and its default. The CLI builds its options from this table, the action's inputs are checked against
 * it (test/unit/settings.test.ts), and errors name a setting the way the user wrote it. Data only.
 */

export type FrontDoor = 'cli' | 'action';

export interface Setting {
  /** The CLI flag, e.g. `--jobs`; absent when only the action has it. */
  flag?: string;
  /** The flag's value in help texts, e.g. `<n>`; absent for a switch. */
  value?: string;
  /** The action input; absent when only the CLI has it. */
  input?: string;
  doc: string;
  /** The default as a user would write it; absent when it is computed (the doc says how) or unset. */
  default?: string;
  choices?: readonly string[];
  /** Repeatable flag / comma- or newline-separated input. */
  list?: boolean;
  /** A number's bounds: buildRunConfig refuses anything outside them (the manifest schema uses the same). */
  bounds?: { min: number; max: number; integer: boolean };
}

export const SETTINGS = {
  config: {
    flag: '--config',
    value: '<dir>',
    input: 'config',
    doc: 'directory holding mkosi.conf and itest.yaml (default: . or ./mkosi)',
  },
  manifest: {
    flag: '--manifest',
    value: '<file>',
    input: 'manifest',
    doc: 'test manifest (default: <config>/itest.yaml)',
  },
  mesonBuildDir: {
    flag: '--meson-build-dir',
    value: '<dir|file>',
    input: 'meson-build-dir',
    doc: "run the tests a meson build directory registers through systemd's integration-test-wrapper.py (or the saved JSON of `meson introspect --tests`), instead of a manifest",
  },
  mesonSuite: {
    flag: '--meson-suite',
    value: '<suite>',
    input: 'meson-suite',
    doc: 'with --meson-build-dir: only the tests of this meson suite (e.g. integration-tests)',
  },
  output: {
    flag: '--output',
    value: '<dir>',
    input: 'output',
    doc: 'results directory (results.json, junit.xml, logs)',
    default: 'itest-results',
  },
  tests: {
    flag: '--test',
    value: '<name|glob>',
    input: 'tests',
    doc: 'select tests by name or unit, globs allowed (repeatable)',
    list: true,
  },
  tags: {
    flag: '--tag',
    value: '<tag>',
    input: 'tags',
    doc: "select tests carrying this tag, or with '!tag' not carrying it (repeatable: all must hold)",
    list: true,
  },
  jobs: {
    flag: '--jobs',
    value: '<n>',
    input: 'jobs',
    doc: 'VMs at once (default: from CPUs and memory)',
    bounds: { min: 1, max: 256, integer: true },
  },
  vmSlots: {
    flag: '--vm-slots',
    value: '<dir>',
    doc:
      "share the host's VM budget with other itest processes through the slot files in this directory: " +
      'together they never run more VMs at once than one run would (default: $ITEST_VM_SLOTS; unset, a run ' +
      'counts only its own VMs; itest test always shares <cache-dir>/slots)',
  },
  timeout: {
    flag: '--timeout',
    value: '<seconds>',
    input: 'timeout',
    doc: "override every test's timeout (scaled under TCG)",
    // The same bounds as a test's `timeout` in schemas/itest-manifest.schema.json (a day at most).
    bounds: { min: 1, max: 86400, integer: false },
  },
  timeoutScale: {
    flag: '--timeout-scale',
    value: '<factor>',
    input: 'timeout-scale',
    doc: 'multiply timeouts (default: 1 with KVM, 3 with TCG)',
    bounds: { min: 0.1, max: 100, integer: false },
  },
  transport: {
    flag: '--transport',
    value: '<kind>',
    input: 'transport',
    doc: "how results leave the VM: vsock (the kernel's /dev/vhost-vsock), vsock-user (vhost-device-vsock, user space), serial (virtio-serial); auto takes the first that works",
    default: 'auto',
    choices: ['auto', 'vsock', 'vsock-user', 'serial'],
  },
  kvm: {
    flag: '--kvm',
    value: '<mode>',
    input: 'kvm',
    doc: 'use KVM: auto falls back to TCG when KVM is absent or cannot run the guest, yes fails instead',
    default: 'auto',
    choices: ['auto', 'yes', 'no'],
  },
  keep: {
    flag: '--keep',
    value: '<which>',
    doc: 'keep journals and console logs of',
    default: 'failed',
    choices: ['failed', 'all'],
  },
  mkosi: {
    flag: '--mkosi',
    value: '<path>',
    input: 'mkosi',
    doc: 'mkosi executable (default: $ITEST_MKOSI or mkosi on PATH)',
  },
  cacheDir: {
    flag: '--cache-dir',
    value: '<dir>',
    doc: 'local image cache (default: $ITEST_CACHE_DIR or ~/.cache/itest)',
  },
  cache: {
    flag: '--no-cache',
    input: 'cache',
    doc: 'build the image into the output directory and do not cache it',
    default: 'true',
  },
  incremental: {
    flag: '--incremental',
    input: 'incremental',
    default: 'false',
    doc:
      'on an image key miss, build incrementally from the state kept under the base key (mkosi Incremental=, ' +
      'its package cache and build directory; kept in <cache-dir>/base, by the action in the Actions cache; see itest hash --explain)',
  },
  imageDir: {
    flag: '--image-dir',
    value: '<dir>',
    doc: 'boot this prebuilt mkosi output directory: no hashing lookup, no build',
  },
  hashKey: {
    flag: '--hash-key',
    value: '<string>',
    input: 'cache-key',
    doc: 'extra string mixed into the image key (change it to force a rebuild)',
    default: '',
  },
  hashGlobs: {
    flag: '--hash-glob',
    value: '<glob>',
    input: 'hash-globs',
    doc: 'extra files (relative to the current directory) that the image depends on (repeatable)',
    list: true,
  },
  keyPrefix: {
    flag: '--key-prefix',
    value: '<prefix>',
    input: 'key-prefix',
    doc: 'image key prefix',
    default: 'itest-image',
  },
  shell: {
    flag: '--shell',
    doc: 'keep the VM of the one selected test up on this terminal after the test (debugging)',
  },
  durations: {
    flag: '--durations',
    value: '<results.json>',
    input: 'durations',
    doc: 'start the longest tests first, by their durations in an earlier run',
  },
  plan: {
    flag: '--plan',
    value: '<file>',
    input: 'plan',
    doc: 'a shard plan from `itest plan --shards N --json` (with --shard)',
  },
  shard: {
    flag: '--shard',
    value: '<n>',
    input: 'shard',
    doc: 'run shard n of the plan',
    bounds: { min: 1, max: 64, integer: true },
  },
  repeat: {
    flag: '--repeat',
    value: '<n>',
    input: 'repeat',
    doc: 'run the selection n times over to hunt flaky tests; a test fails if any run fails',
    default: '1',
    bounds: { min: 1, max: 1000, integer: true },
  },
  imagePolicy: {
    input: 'image-policy',
    doc: 'restore-only: a cache miss is an error instead of a build',
    default: 'build',
    choices: ['build', 'restore-only'],
  },
  expectedKey: {
    input: 'image-key',
    doc: 'the image key the prepare job computed; a different key here is an error that says why',
  },
} as const satisfies Record<string, Setting>;

export type SettingKey = keyof typeof SETTINGS;

/**
 * A timeout as the engine arms it: the test's (or --timeout's) seconds times the scale, rounded to whole
 * seconds, in a Node timer (whose delay is a signed 32-bit count of milliseconds: a longer one fires at
 * once). Outside these bounds a test would time out the moment it starts and be blamed for it.
 */
export const SCALED_TIMEOUT = { min: 1, max: Math.floor((2 ** 31 - 1) / 1000) } as const;

/**
 * Caps on what itest reads, so that a broken or hostile file fails with a message instead of running the
 * process out of memory (a 50 MB manifest of 647k tests did, after 90 s). Far above real use: systemd
 * itself has about 100 integration tests, a manifest of 10,000 takes about 660 KB and 1.5 s to check.
 */
export const INPUT_LIMITS = {
  /** itest.yaml; YAML with positions costs about 1.5 s per MiB to parse. */
  manifestBytes: 1024 ** 2,
  /** Nodes (maps, lists, scalars) in the manifest's YAML document. */
  manifestNodes: 250_000,
  /** A shard plan (names and durations only). */
  planBytes: 4 * 1024 ** 2,
  /** One results.json; a failed test's digest is bounded to tens of KB (digest/builder.ts DEFAULT_LIMITS). */
  resultsBytes: 16 * 1024 ** 2,
  /** Tests in a manifest (listed and discovered), a plan or a results.json. */
  tests: 10_000,
  /** Nesting of a JSON input: deeper data would overflow the stack when it is written out again. */
  jsonDepth: 64,
} as const;

/** Two settings named together: `--plan and --shard`, or `` `plan` and `shard` `` (with `inputs` before). */
export function spellPair(door: FrontDoor, a: SettingKey, b: SettingKey): { bare: string; full: string } {
  if (door === 'cli') {
    const both = `${spell(door, a)} and ${spell(door, b)}`;
    return { bare: both, full: both };
  }
  const input = (k: SettingKey) => (SETTINGS[k] as Setting).input ?? k;
  const bare = `\`${input(a)}\` and \`${input(b)}\``;
  return { bare, full: `inputs ${bare}` };
}

/** A setting as the user wrote it at this front door: `--kvm yes`, or input `kvm: yes`. */
export function spell(door: FrontDoor, key: SettingKey, value?: string): string {
  const s: Setting = SETTINGS[key];
  if (door === 'action' && s.input)
    return value === undefined ? `input \`${s.input}\`` : `input \`${s.input}: ${value}\``;
  const flag = s.flag ?? key;
  return value === undefined ? flag : `${flag} ${value}`;
}
