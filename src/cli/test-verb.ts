/**
 * `itest test NAME`: one test in one process, for `meson test` (a test() per integration test, as
 * systemd registers its own). A verb of its own rather than a flag of `run`, because everything at its
 * edge differs: meson's exit statuses (results/meson.ts), TAP on stdout with --tap, only this test's
 * verdict or failure block on the output, an inner deadline so that meson's timeout (SIGTERM, SIGKILL
 * 0.5 s later) never comes first, its own output directory per test, and a VM budget and image build
 * shared with the other itest processes `meson test -j N` starts at the same time.
 */
import { lstatSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { BuildContext, RawSettings, RunConfig } from '../config/run-config.ts';
import type { SettingKey } from '../config/settings.ts';
import { loadTests } from '../engine/load-tests.ts';
import { progressUi } from '../engine/progress.ts';
import { runEngine } from '../engine/run.ts';
import { HostNotReady } from '../host/decide.ts';
import { failureBlock, plainText } from '../results/terminal.ts';
import { MESON_EXIT, mesonExitCode, mesonTapExitCode, renderTap } from '../results/meson.ts';
import type { TestResult } from '../results/model.ts';
import { OutputLayout } from '../run/output-layout.ts';
import { stopOnSignals } from '../run/stop-on-signals.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { safeFileName } from '../util/sanitize.ts';
import { TEST_VERB } from './verb-settings.ts';

export const TEST_EXIT_HELP = `Exit status (meson's exitcode protocol):
  0    the test passed (or failed as expected: should-fail)
  1    the test failed or timed out (also when cut short by --deadline)
  77   the test skipped itself
  99   error: the host is not ready, the image could not be built, the guest sent no status,
       the VM died, or the run was stopped (SIGTERM from meson's timeout, SIGINT)
  2    usage error: bad flag or value, unknown test
With --tap the verdict is in the TAP stream and the exit status is 0, or 99 for an error.`;

/** Seconds kept back from --deadline for the hang report, stopping the VM, the journal and results.json. */
export function deadlineReserve(deadline: number): number {
  return Math.min(15, deadline / 4);
}

/** How long after SIGTERM the process exits whatever it is doing (meson sends SIGKILL after 0.5 s). */
const SIGTERM_EXIT_MS = 300;

export function parseDeadline(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 4 || n > 86400)
    throw new UserError(
      `--deadline: "${v}" must be a number of seconds from 4 to 86400 (meson's timeout for the test)`,
    );
  return n;
}

/** The output directory of one test (and iteration of `meson test --repeat`), a safe path component. */
export function testOutputDir(output: string, name: string, env: NodeJS.ProcessEnv): string {
  const k = Number(env.MESON_TEST_ITERATION ?? 1);
  return join(output, safeFileName(Number.isInteger(k) && k > 1 ? `${name}.iteration-${k}` : name));
}

export function addTestVerb(
  program: Command,
  h: {
    withSettings: (cmd: Command, keys: readonly SettingKey[]) => (o: Record<string, unknown>) => RawSettings;
    cliConfig: (raw: RawSettings, extra?: Partial<BuildContext>) => RunConfig;
  },
): void {
  const cmd = program
    .command('test')
    .argument('<name>', 'the test (its name or unit, exactly)')
    .description("run one test in its own VM, for `meson test`: meson's exit statuses, TAP, a deadline")
    .addHelpText(
      'after',
      `
Outputs go to <output>/<name>/ (results.json, junit.xml, the journal and console log), so that the
processes \`meson test --num-processes N\` starts never share a file. They share the image: the first
one builds it, the others wait. And they share the host's VM budget (--jobs, else what CPUs and memory
allow): a slot directory under the cache. TEST_SHELL=1 in the environment is --shell (meson's
\`--setup=shell\`).

${TEST_EXIT_HELP}`,
    );
  const raw = h.withSettings(cmd, TEST_VERB);
  cmd
    .option('--tap', "print TAP 14 (the test's subtests, then the test) for meson's protocol: 'tap'")
    .option(
      '--deadline <seconds>',
      "meson's timeout for this test: itest ends the VM in time to save its journal, console log and results",
    )
    .action(async (name: string, o: Record<string, unknown>) => {
      process.exitCode = await testVerb(name, o, raw(o), h.cliConfig);
    });
}

async function testVerb(
  name: string,
  o: Record<string, unknown>,
  settings: RawSettings,
  cliConfig: (raw: RawSettings, extra?: Partial<BuildContext>) => RunConfig,
): Promise<number> {
  const t0 = performance.now();
  const tap = o.tap === true;
  const deadline = parseDeadline(o.deadline as string | undefined);
  if (/[*?[\]]/.test(name))
    throw new UserError(`itest test ${name}: one test by its exact name or unit, no globs`);
  if (process.env.TEST_SHELL === '1') settings.shell = 'true';
  const base = cliConfig({ ...settings, tests: [name] });
  const { selected } = await loadTests(base).catch((e: unknown) => {
    // The selection came from the argument, not from a --test flag.
    throw e instanceof UserError
      ? new UserError(e.message.replace(/^--test /, 'itest test '), e.exitCode)
      : e;
  });
  const spec = selected[0]!;
  if (selected.length !== 1 || (spec.name !== name && spec.unit !== name))
    throw new UserError(
      `itest test ${name}: names ${selected.length} tests (${selected.map((t) => t.name).join(', ')}); give one test's exact name`,
    );
  // The processes meson starts share the host's VM budget: slots under the cache unless --vm-slots says where.
  const cfg: RunConfig = {
    ...base,
    outputDir: testOutputDir(base.outputDir, spec.name, process.env),
    vmSlots: base.vmSlots ?? join(base.cacheDir, 'slots'),
  };
  // stdout is the TAP stream with --tap: progress goes to stderr then.
  const say = (l: string) => (tap ? console.error(l) : console.log(l));
  const files = new OutputLayout(cfg.outputDir).test(spec.name);

  const stop = new AbortController();
  const signals = stopOnSignals((sig, first) => {
    if (!first) return;
    console.error(`itest: ${sig}: stopping ${spec.name}; its logs stay in ${cfg.outputDir}`);
    // meson sends SIGKILL 0.5 s after SIGTERM: leave before it, every log on disk. The console log is
    // written as it arrives; the serial journal stream leaves the work directory; exiting ends the VM's
    // whole tree (util/process.ts), which a SIGKILL would orphan.
    setTimeout(() => {
      keepStream(files.journalExport, files.keptExport);
      if (tap) console.log(renderTap(undefined, spec.name, `stopped by ${sig}`).join('\n'));
      process.exit(MESON_EXIT.error);
    }, SIGTERM_EXIT_MS).unref();
  });
  signals.addEventListener('abort', () => stop.abort(signals.reason), { once: true });
  let vmStarted = false;
  const timers: NodeJS.Timeout[] = [];
  let vmDeadline: number | undefined;
  if (deadline !== undefined && !cfg.shell) {
    const vmEndMs = (deadline - deadlineReserve(deadline)) * 1000;
    vmDeadline = t0 + vmEndMs;
    // Still waiting for the image or a VM slot when the VM should already be over: give up in time.
    timers.push(
      setTimeout(() => {
        if (!vmStarted)
          stop.abort(
            `the --deadline of ${deadline} s came before its VM could start (waiting for the image or a slot)`,
          );
      }, vmEndMs),
    );
  }
  const progress = progressUi(say, (l) => console.error(`warning: ${l}`));
  const ui = {
    ...progress,
    testStart: (...a: Parameters<typeof progress.testStart>) => {
      vmStarted = true;
      progress.testStart(...a);
    },
  };
  let result: TestResult | undefined;
  let failure: string | undefined;
  try {
    const out = await runEngine(cfg, ui, stop.signal, {
      ...(vmDeadline !== undefined ? { vmDeadline } : {}),
    });
    result = out.results.tests[0];
    if (out.fatal) failure = out.fatal.message;
    say(`results: ${out.resultsPath}`);
  } catch (e) {
    if (e instanceof UserError && e.exitCode === ExitCode.usage) throw e;
    if (!(e instanceof UserError || e instanceof HostNotReady)) throw e;
    failure = e.message;
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  if (failure) console.error(`itest: ${failure}`);
  if (tap) {
    console.log(renderTap(failure ? undefined : result, spec.name, failure).join('\n'));
    return failure ? MESON_EXIT.error : mesonTapExitCode(result?.status);
  }
  if (result && !failure) {
    const failed = result.status === 'fail' || result.status === 'timeout' || result.status === 'error';
    if (failed) console.log(failureBlock(result).map(plainText).join('\n'));
    else
      console.log(
        plainText(
          `${result.status.toUpperCase()}  ${result.name}  ${result.timings.totalSeconds} s  ${result.reason}`,
        ),
      );
  }
  return failure ? MESON_EXIT.error : mesonExitCode(result?.status);
}

/** The serial journal stream out of the work directory, beside the console log: never through a link. */
function keepStream(from: string, to: string): void {
  try {
    if (lstatSync(from).isFile()) renameSync(from, to);
  } catch {
    // No stream (vsock writes the journal beside the console log already).
  }
}
