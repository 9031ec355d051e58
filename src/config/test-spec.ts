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
  /** Where the test came from: listed in the manifest, found by discovery, or both. */
  source: 'manifest' | 'discovered';
}

export const TEST_DEFAULTS = {
  timeout: 300,
  exitStatus: 123,
  skipStatus: 77,
  ram: 1024 ** 3,
  retries: 0,
  infraRetries: 1,
} as const;
