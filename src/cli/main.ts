/**
 * The `itest` command line: the engine's terminal front door. Parses flags into a RunConfig, prints
 * progress and the report, and maps outcomes to exit statuses (see `itest --help`).
 */
import { Command, CommanderError, Option } from 'commander';
import { basename, relative, resolve } from 'node:path';
import { runEngine } from '../engine/run.ts';
import { progressUi } from '../engine/progress.ts';
import { loadTests } from '../engine/load-tests.ts';
import { explainLines, runImageKey } from '../engine/image-key.ts';
import {
  buildRunConfig,
  DEFAULT_OUTPUT,
  type BuildContext,
  type RawSettings,
  type RunConfig,
} from '../config/run-config.ts';
import { SETTINGS, type Setting, type SettingKey } from '../config/settings.ts';
import { HostNotReady } from '../host/decide.ts';
import { hostArch, probeHost } from '../host/probe.ts';
import { ansiPaint, noPaint, renderEnvironment, renderReport } from '../results/terminal.ts';
import { terminalMode } from '../results/live-status.ts';
import { LiveLine } from './live-line.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { TOOL_VERSION } from '../version.ts';
import { loadDurations } from '../shard/durations.ts';
import { planShards } from '../shard/plan-shards.ts';
import { parseShardCount } from '../config/shard-plan.ts';
import { mergeReport, readPlanFile } from '../engine/merge-report.ts';
import { stopOnSignals } from '../run/stop-on-signals.ts';
import { addTestVerb } from './test-verb.ts';
import { addSshVerbs } from './ssh-verb.ts';
import { COMMON, RUN } from './verb-settings.ts';

const collect = (v: string, prev: string[]) => [...prev, v];

/** A commander option for a setting of settings.ts: its flag, doc, choices and default, nothing else. */
function settingOption(key: SettingKey): Option {
  const s: Setting = SETTINGS[key];
  const o = new Option(s.value ? `${s.flag!} ${s.value}` : s.flag!, s.doc);
  if (s.choices) o.choices(s.choices);
  if (s.list) o.argParser(collect).default([]);
  else if (s.default !== undefined && s.value) o.default(s.default);
  return o;
}

/** Adds the options of these settings, and hands the raw strings back for buildRunConfig. */
function withSettings(
  cmd: Command,
  keys: readonly SettingKey[],
): (opts: Record<string, unknown>) => RawSettings {
  const options = keys.map((k) => [k, settingOption(k)] as const);
  for (const [, o] of options) cmd.addOption(o);
  return (opts) => {
    const raw: RawSettings = {};
    for (const [k, o] of options) {
      const v = opts[o.attributeName()];
      if (v === undefined) continue;
      raw[k] = typeof v === 'boolean' ? String(v) : (v as string | string[]);
    }
    return raw;
  };
}

/** What every exit status of `itest` means (shown by `itest --help` and `itest run --help`). */
export const EXIT_HELP = `Exit status:
  0    every selected test passed, skipped, or failed as expected (should-fail)
  1    a test failed, timed out or could not run (error); with --repeat, in any of the runs
  2    usage error: bad flag or value, invalid manifest, unknown test, nothing selected
  3    the host is missing something (mkosi, QEMU, journal tools, KVM or vsock when required),
       or KVM was required and broke during the run (the results so far are written)
  4    the image could not be had: its build failed, a restore-only run missed
       the cache, or the image key differs from the prepare job's
  70   internal error (a bug in itest: please report it with the stack trace)
  130  stopped by SIGINT, SIGTERM or SIGHUP (also during the image build): the VMs and the
       build were ended, the partial results written`;

function cliConfig(raw: RawSettings, extra: Partial<BuildContext> = {}): RunConfig {
  return buildRunConfig(raw, {
    door: 'cli',
    cwd: process.cwd(),
    env: process.env,
    invokedAs: invokedAs(process.argv[1]),
    // Run by hand in a CI job, a shard is still told apart from its re-runs by the job's attempt.
    runAttempt: Number(process.env.GITHUB_RUN_ATTEMPT ?? 1) || 1,
    ...extra,
  });
}

/** `itest` when run through the bin link, else `node <script>` so that printed commands work verbatim. */
export function invokedAs(script: string | undefined): string {
  if (!script || basename(script) === 'itest') return 'itest';
  return `node ${relative(process.cwd(), script) || script}`;
}

export function buildProgram(): Command {
  const program = new Command('itest')
    .description(
      'Run VM integration tests of a mkosi project: one QEMU VM per test, results out of the guest.',
    )
    .version(TOOL_VERSION)
    // Set before the subcommands exist: they copy it, and usage errors must come back as exit 2, not exit 1.
    .exitOverride()
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
${EXIT_HELP}

Examples:
  itest run --config examples/demo             build (or reuse) the image and run every test
  itest run --test 'TEST-0[12]*' --jobs 2      run a selection
  itest run --tag smoke --tag '!slow'          tests tagged smoke and not slow
  itest run --test TEST-04-NET --repeat 20     hunt a flaky test: its pass count out of 20
  itest list                                   show the tests a run would start
  itest test TEST-01-BASIC --deadline 300      one test for meson test (exit 0/1/77/99, --tap)
  itest hash --explain                         show every input of the image cache key`,
    );

  addRun(program);
  addList(program);
  addHash(program);
  addPlan(program);
  addReport(program);
  addTestVerb(program, { withSettings, cliConfig });
  addSshVerbs(program, DEFAULT_OUTPUT);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (err instanceof UserError) {
      console.error(`itest: ${err.message}`);
      return err.exitCode;
    }
    if (err instanceof HostNotReady) {
      console.error(`itest: ${err.message}`);
      return ExitCode.hostNotReady;
    }
    console.error(`itest: internal error: ${(err as Error).stack ?? String(err)}`);
    return ExitCode.internal;
  }
}

const TAG_HELP = `Tags:
  --tag T       tests carrying tag T; several: tests carrying all of them
  --tag '!T'    tests not carrying tag T; several: carrying none of them
  e.g. --tag smoke --tag '!slow' runs the smoke tests that are not slow`;

/** `itest run`: the engine, with progress on the terminal and the report at the end. */
function addRun(program: Command): void {
  const runCmd = program
    .command('run')
    .description('build or restore the image, then run the tests, one VM each')
    .addHelpText('after', `\n${TAG_HELP}\n\n${EXIT_HELP}`);
  const runRaw = withSettings(runCmd, RUN);
  runCmd.action(async (opts: Record<string, unknown>) => {
    const raw = runRaw(opts);
    const plan = typeof raw.plan === 'string' ? await readPlanFile(raw.plan) : undefined;
    const durations = typeof raw.durations === 'string' ? await loadDurations(raw.durations) : undefined;
    if (durations) console.log(durations.note);
    const cfg = cliConfig(raw, {
      ...(plan ? { plan } : {}),
      ...(durations?.durations ? { durations: durations.durations } : {}),
    });
    // --shell hands the terminal to the VM's console: no status line drawn over it.
    const mode = terminalMode(Boolean(process.stdout.isTTY), process.env);
    const live = mode.live && !cfg.shell ? new LiveLine(process.stdout) : undefined;
    const say = (l: string) => (live ? live.line(process.stdout, l) : console.log(l));
    const shout = (l: string) => (live ? live.line(process.stderr, l) : console.error(l));
    const paint = mode.color ? ansiPaint : noPaint;
    // Every signal, however many, only stops the run: the VMs are ended and the partial results written.
    const stop = stopOnSignals((sig, first) =>
      shout(
        first
          ? `\n${sig}: stopping the VMs; logs stay in ${cfg.outputDir}`
          : `${sig}: still stopping the VMs; the partial results follow`,
      ),
    );
    const ui = progressUi(say, (l) => shout(`warning: ${l}`), { ...(live ? { live } : {}), paint });
    // The status line goes before anything else is printed: the report, or the error main prints.
    const out = await runEngine(cfg, ui, stop).finally(() => live?.stop());
    console.log(`\n${renderEnvironment(out.results)}`);
    console.log(renderReport(out.results, paint));
    console.log(`\nresults: ${out.resultsPath}\njunit:   ${out.junitPath}`);
    // KVM was required and broke mid-run: the report above, then the host problem (exit 3).
    if (out.fatal) throw out.fatal;
    process.exitCode = stop.aborted
      ? ExitCode.cancelled
      : out.results.summary.ok
        ? ExitCode.ok
        : ExitCode.testsFailed;
  });
}

/** `itest list`: the tests a run would start. */
function addList(program: Command): void {
  const listCmd = program
    .command('list')
    .description('list the tests a run would start, without booting anything');
  const listRaw = withSettings(listCmd, COMMON);
  listCmd.option('--json', 'print JSON').action(async (o: Record<string, unknown>) => {
    const { selected } = await loadTests(cliConfig(listRaw(o)));
    if (o.json) {
      console.log(JSON.stringify(selected, null, 2));
      return;
    }
    const w = Math.max(...selected.map((t) => t.name.length));
    for (const t of selected) {
      const flags = [
        t.shouldFail ? 'should-fail' : '',
        t.tags.length ? `tags=${t.tags.join(',')}` : '',
        t.source,
        t.skip ? `skipped: ${t.skip}` : '',
      ]
        .filter(Boolean)
        .join(' ');
      console.log(`${t.name.padEnd(w)}  ${t.unit}  timeout=${t.timeout}s  ${flags}`);
    }
  });
}

/** `itest hash`: the image cache key and, with --explain, its inputs. */
function addHash(program: Command): void {
  const hashCmd = program.command('hash').description('print the image cache key of the config');
  const hashRaw = withSettings(hashCmd, COMMON);
  hashCmd.option('--explain', 'list every input of the key').action(async (o: Record<string, unknown>) => {
    const base = cliConfig(hashRaw(o));
    const host = await probeHost({ mkosi: base.mkosi, checkKvm: false });
    if (!host.mkosi.version)
      throw new HostNotReady([
        `mkosi: ${host.mkosi.error ?? 'no version'} (the key includes mkosi's version)`,
      ]);
    const k = await runImageKey(base, host.mkosi.version, hostArch());
    if (o.explain) {
      console.log(`# image key ${k.key} (sha256 ${k.digest}): the inputs marked image, in hashing order`);
      console.log(
        `# base key  ${k.base.key} (sha256 ${k.base.digest}): the inputs marked base (mkosi's incremental ` +
          `and package caches; a config file counts by its base settings)`,
      );
      for (const l of explainLines(k)) console.log(l);
    }
    console.log(k.key);
  });
}

/** `itest plan`: shards for parallel CI jobs. */
function addPlan(program: Command): void {
  const planCmd = program
    .command('plan')
    .description('split the selected tests into shards for parallel CI jobs (balanced by known durations)');
  const planRaw = withSettings(planCmd, COMMON);
  planCmd
    .option('--shards <n|auto>', 'number of shards, or auto (about 10 VM-minutes each)', 'auto')
    .option(
      '--durations <results.json>',
      'balance by the durations in an earlier run (else by timeout and name)',
    )
    .option('--json', 'print the plan as JSON (input of `itest run --plan` and `itest report --plan`)')
    .action(async (o: Record<string, unknown> & { shards: string; durations?: string; json?: boolean }) => {
      const count = parseShardCount(o.shards);
      const { selected } = await loadTests(cliConfig(planRaw(o)));
      const d = o.durations ? await loadDurations(o.durations) : undefined;
      if (d) console.error(d.note);
      const plan = planShards(selected, count, d?.durations);
      if (o.json) {
        console.log(JSON.stringify(plan));
        return;
      }
      console.log(`${plan.total} shard(s), costs from ${plan.basis}:`);
      for (const s of plan.shards)
        console.log(
          `  ${s.index}/${plan.total}  ${String(s.plannedSeconds).padStart(7)} s  ${s.tests.join(' ')}`,
        );
    });
}

/** `itest report --merge`: one report from the shards' results. */
function addReport(program: Command): void {
  program
    .command('report')
    .description("merge the shards' results into one report (results.json, JUnit, terminal)")
    .requiredOption(
      '--merge <dir...>',
      "directories holding the shards' results.json files (searched recursively)",
    )
    .option(
      '--plan <file>',
      'the shard plan: shards without results and tests without a result fail the report',
    )
    .option('--output <dir>', 'where the merged results.json and junit.xml go', `${DEFAULT_OUTPUT}-merged`)
    .action(async (o: { merge: string[]; plan?: string; output: string }) => {
      const out = await mergeReport({
        dirs: o.merge.map((d) => resolve(d)),
        ...(o.plan ? { plan: await readPlanFile(o.plan) } : {}),
        outputDir: resolve(o.output),
      });
      console.log(renderEnvironment(out.results));
      console.log(renderReport(out.results));
      console.log(`\nresults: ${out.resultsPath}\njunit:   ${out.junitPath}`);
      process.exitCode = out.results.summary.ok ? ExitCode.ok : ExitCode.testsFailed;
    });
}
