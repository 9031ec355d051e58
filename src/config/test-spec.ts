/** One test as the engine runs it: every default resolved, nothing left to look up. */
export interface TestSpec {
  name: string;
  unit: string;
  description?: string;
  /** Seconds, before TCG scaling. */
  timeout: number;
  exitStatus: number;
  skipStatus: number;
  shouldFail: boolean;
  kernelCmdline: string[];
  credentials: Record<string, string>;
  mkosiArgs: string[];
  qemuArgs: string[];
  /** Guest RAM in bytes. */
  ram: number;
  /** Guest vCPUs; undefined = engine default for the accelerator. */
  cpus?: number;
  retries: number;
  infraRetries: number;
  tags: string[];
  /** A passing test that left a coredump fails (unless the coredump matches coredumpExclude). */
  failOnCoredump: boolean;
  coredumpExclude?: string;
  /** A passing test whose journal holds sanitizer reports fails (systemd's wrapper does so). */
  failOnSanitizer?: boolean;
  /** With failOnSanitizer: reports of processes matching this regex are expected. */
  sanitizerExclude?: string;
  /** How mkosi boots this test (linux, uefi, ...); undefined: the manifest's firmware, else the image's. */
  firmware?: string;
  /** The test asked for a VM (systemd's --vm): itest boots one for every test; TEST_NO_QEMU=1 skips these. */
  vm?: boolean;
  /** A slow test (systemd's --slow): run only with SYSTEMD_SLOW_TESTS=1. */
  slow?: boolean;
  /** Why the test is not run at all (systemd's --skip, TEST_SKIP, ...); it is reported as skipped. */
  skip?: string;
  /** Set in the test unit's environment by its drop-in (TEST_MATCH_SUBTEST, ..., as systemd's wrapper does). */
  unitEnvironment?: Record<string, string>;
  /** QEMU killed (mkosi exit 247) on the last infra retry too: a skip with the reason, as systemd does. */
  skipWhenQemuKilled?: boolean;
  /** Where the test came from: listed in the manifest, found by discovery, both, or a meson build directory. */
  source: 'manifest' | 'discovered' | 'meson';
}

export const TEST_DEFAULTS = {
  timeout: 300,
  exitStatus: 123,
  skipStatus: 77,
  ram: 1024 ** 3,
  retries: 0,
  infraRetries: 1,
} as const;
