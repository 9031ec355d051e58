/**
 * How the engine talks to its front door: every event of a run, in order. The CLI and the action both
 * implement it with progressUi (progress.ts); benchmarks implement it to time the phases.
 */
import type { TestSpec } from '../config/test-spec.ts';
import type { Attempt, Results } from '../results/model.ts';
import type { HostNotReady } from '../host/decide.ts';

export interface Ui {
  /** A line for the user: the host found, the image restored or built, the pool size. */
  info(line: string): void;
  /** Something the user must see, and that is not an error of the run (the front door decides how loud). */
  warn(line: string): void;
  /** The selected tests, once the manifest is read and before anything is built or booted. */
  planned(tests: TestSpec[]): void;
  /**
   * A VM was started for this attempt of this test, with this argument vector (empty when the attempt
   * failed on the host before any VM could start: its testEnd follows at once).
   */
  testStart(spec: TestSpec, attempt: number, argv: string[]): void;
  /** That attempt ended; another follows when willRetry. */
  testEnd(spec: TestSpec, attempt: Attempt, willRetry: boolean): void;
  /** The image is being built (a cache miss): mkosi's argument vector and the log it writes. */
  buildStart?(argv: string[], log: string): void;
  /** A line of the build's output (mkosi's stdout and stderr, as they reach the log). */
  buildLine?(line: string): void;
  /** The build ended: ok false when it failed or was cancelled (the error follows). */
  buildEnd?(ok: boolean, seconds: number): void;
}

/** What a run leaves: its results and where they were written. */
export interface RunOutput {
  results: Results;
  resultsPath: string;
  junitPath: string;
  /**
   * The run had to stop because the host is not ready after all (KVM required but broken): the results
   * so far are written; the front door reports them, then fails with this (exit 3).
   */
  fatal?: HostNotReady;
}
