/**
 * The `itest` command line: the engine's terminal front door. Parses flags into a RunConfig, prints
 * progress and the report, and maps outcomes to exit statuses (see `itest --help`).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { basename, relative, resolve } from 'node:path';
import { runEngine } from '../engine/run.ts';
import { progressUi } from '../engine/progress.ts';
import { loadTests } from '../engine/load-tests.ts';
import { computeImageKey } from '../engine/image-key.ts';
import {
  defaultCacheDir,
  defaultManifest,
  mkosiCommand,
  resolveConfigDir,
  DEFAULT_OUTPUT,
  type RunConfig,
} from '../config/run-config.ts';
import { HostNotReady } from '../host/decide.ts';
import { hostArch, probeHost } from '../host/probe.ts';
import { renderEnvironment, renderReport } from '../results/terminal.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { TOOL_VERSION } from '../version.ts';
import { loadDurations } from '../shard/durations.ts';
import { parseShardCount, planShards, selectShard } from '../shard/plan-shards.ts';
import { mergeReport, readPlanFile } from '../engine/merge-report.ts';

const positiveInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1)
    throw new InvalidArgumentError(`${name} must be a whole number >= 1`);
  return Number(v);
};
const positiveNumber = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0`);
  return n;
};
const collect = (v: string, prev: string[]) => [...prev, v];

interface CommonOpts {
  config?: string;
  manifest?: string;
  test: string[];
  tag: string[];
  mkosi?: string;
  hashKey: string;
  hashGlob: string[];
  keyPrefix: string;
}

function common(cmd: Command): Command {
  return cmd
    .option('--config <dir>', 'directory holding mkosi.conf and itest.yaml (default: . or ./mkosi)')
    .option('--manifest <file>', 'test manifest (default: <config>/itest.yaml)')
    .option('--test <name|glob>', 'select tests by name or unit, globs allowed (repeatable)', collect, [])
    .option('--tag <tag>', 'select tests carrying this tag (repeatable: all must match)', collect, [])
    .option('--mkosi <path>', 'mkosi executable (default: $ITEST_MKOSI or mkosi on PATH)')
    .option('--hash-key <string>', 'extra string mixed into the image key (change it to force a rebuild)', '')
    .option(
      '--hash-glob <glob>',
      'extra files (relative to the current directory) that the image depends on (repeatable)',
      collect,
      [],
    )
    .option('--key-prefix <prefix>', 'image key prefix', 'itest-image');
}

function baseConfig(
  o: CommonOpts,
): Pick<
  RunConfig,
  'configDir' | 'manifestPath' | 'tests' | 'tags' | 'mkosi' | 'hashKey' | 'hashGlobs' | 'keyPrefix'
> {
  const configDir = resolveConfigDir(process.cwd(), o.config);
  return {
    configDir,
    manifestPath: o.manifest ? resolve(o.manifest) : defaultManifest(configDir),
    tests: o.test,
    tags: o.tag,
    mkosi: mkosiCommand(o.mkosi, process.env),
    hashKey: o.hashKey,
    hashGlobs: o.hashGlob,
    keyPrefix: o.keyPrefix,
  };
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
Exit status:
  0   every selected test passed, skipped, or failed as expected (should-fail)
  1   a test failed, timed out or could not run (error)
  2   usage error: bad flag, invalid manifest, unknown test
  3   the host is missing something (mkosi, QEMU, journal tools, KVM or vsock when required)
  4   the image build failed

Examples:
  itest run --config examples/demo             build (or reuse) the image and run every test
  itest run --test 'TEST-0[12]*' --jobs 2      run a selection
  itest list                                   show the tests a run would start
  itest hash --explain                         show every input of the image cache key`,
    );

  common(program.command('run').description('build or restore the image, then run the tests, one VM each'))
    .option('--jobs <n>', 'VMs at once (default: from CPUs and memory)', positiveInt('--jobs'))
    .option(
      '--timeout <seconds>',
      "override every test's timeout (scaled under TCG)",
      positiveNumber('--timeout'),
    )
    .option(
      '--timeout-scale <factor>',
      'multiply timeouts (default: 1 with KVM, 3 with TCG)',
      positiveNumber('--timeout-scale'),
    )
    .addOption(
      new Option('--transport <kind>', 'how results leave the VM')
        .choices(['auto', 'vsock', 'serial'])
        .default('auto'),
    )
    .addOption(new Option('--kvm <mode>', 'use KVM').choices(['auto', 'yes', 'no']).default('auto'))
    .addOption(
      new Option('--keep <which>', 'keep journals and console logs of')
        .choices(['failed', 'all'])
        .default('failed'),
    )
    .option('--output <dir>', 'results directory (results.json, junit.xml, logs)', DEFAULT_OUTPUT)
    .option('--cache-dir <dir>', 'local image cache (default: $ITEST_CACHE_DIR or ~/.cache/itest)')
    .option('--no-cache', 'build the image into the output directory and do not cache it')
    .option('--image-dir <dir>', 'boot this prebuilt mkosi output directory: no hashing lookup, no build')
    .option('--shell', 'keep the VM of the one selected test up on this terminal after the test (debugging)')
    .option(
      '--durations <results.json>',
      'start the longest tests first, by their durations in an earlier run',
    )
    .option('--plan <file>', 'a shard plan from `itest plan --shards N --json` (with --shard)')
    .option('--shard <n>', 'run shard n of --plan', positiveInt('--shard'))
    .action(async (o: CommonOpts & Record<string, unknown>) => {
      const base = baseConfig(o);
      if ((o.plan === undefined) !== (o.shard === undefined))
        throw new UserError('--plan and --shard go together: --plan plan.json --shard 2');
      let selected: ReturnType<typeof selectShard> | undefined;
      if (o.plan !== undefined) {
        if (base.tests.length > 0 || base.tags.length > 0)
          throw new UserError('--shard selects the tests of its shard; drop --test and --tag');
        selected = selectShard(await readPlanFile(o.plan as string), o.shard as number, o.plan as string);
        base.tests = selected.tests;
      }
      const durations = o.durations ? await loadDurations(o.durations as string) : undefined;
      if (durations) console.log(durations.note);
      // --durations wins over the durations the plan was made with.
      const known = durations?.durations ?? selected?.durations;
      const cfg: RunConfig = {
        ...base,
        outputDir: resolve(o.output as string),
        transport: o.transport as RunConfig['transport'],
        kvm: o.kvm as RunConfig['kvm'],
        keep: o.keep as RunConfig['keep'],
        cacheDir: resolve((o.cacheDir as string | undefined) ?? defaultCacheDir(process.env)),
        useCache: o.cache !== false,
        invokedAs: invokedAs(process.argv[1]),
        env: process.env,
        ...(o.jobs !== undefined ? { jobs: o.jobs as number } : {}),
        ...(o.timeout !== undefined ? { timeout: o.timeout as number } : {}),
        ...(o.timeoutScale !== undefined ? { timeoutScale: o.timeoutScale as number } : {}),
        ...(o.imageDir !== undefined ? { imageDir: resolve(o.imageDir as string) } : {}),
        ...(o.shell ? { shell: true } : {}),
        ...(known ? { durations: known } : {}),
        ...(selected ? { shard: selected.shard } : {}),
      };
      const controller = new AbortController();
      const stop = (sig: string) => {
        if (controller.signal.aborted) return;
        console.error(`\n${sig}: stopping the VMs; logs stay in ${cfg.outputDir}`);
        controller.abort();
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      const ui = progressUi(
        (l) => console.log(l),
        (l) => console.error(`warning: ${l}`),
      );
      const out = await runEngine(cfg, ui, controller.signal);
      console.log(`\n${renderEnvironment(out.results)}`);
      console.log(renderReport(out.results));
      console.log(`\nresults: ${out.resultsPath}\njunit:   ${out.junitPath}`);
      process.exitCode = controller.signal.aborted
        ? 130
        : out.results.summary.ok
          ? ExitCode.ok
          : ExitCode.testsFailed;
    });

  common(program.command('list').description('list the tests a run would start, without booting anything'))
    .option('--json', 'print JSON')
    .action(async (o: CommonOpts & { json?: boolean }) => {
      const { selected } = await loadTests(baseConfig(o));
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
        ]
          .filter(Boolean)
          .join(' ');
        console.log(`${t.name.padEnd(w)}  ${t.unit}  timeout=${t.timeout}s  ${flags}`);
      }
    });

  common(program.command('hash').description('print the image cache key of the config'))
    .option('--explain', 'list every input of the key')
    .action(async (o: CommonOpts & { explain?: boolean }) => {
      const base = baseConfig(o);
      const host = await probeHost({ mkosi: base.mkosi, checkKvm: false });
      if (!host.mkosi.version)
        throw new HostNotReady([
          `mkosi: ${host.mkosi.error ?? 'no version'} (the key includes mkosi's version)`,
        ]);
      const k = await computeImageKey({
        configDir: base.configDir,
        mkosiVersion: host.mkosi.version,
        arch: hostArch(),
        userKey: base.hashKey,
        globs: base.hashGlobs,
        globBase: process.cwd(),
        prefix: base.keyPrefix,
      });
      if (o.explain) {
        console.log(`# inputs of ${k.key} (sha256 ${k.digest}), in hashing order`);
        for (const l of k.lines) console.log(`${l.kind.padEnd(7)} ${l.name}  ${l.value}`);
      }
      console.log(k.key);
    });

  common(
    program
      .command('plan')
      .description('split the selected tests into shards for parallel CI jobs (balanced by known durations)'),
  )
    .option('--shards <n|auto>', 'number of shards, or auto (about 10 VM-minutes each)', 'auto')
    .option(
      '--durations <results.json>',
      'balance by the durations in an earlier run (else by timeout and name)',
    )
    .option('--json', 'print the plan as JSON (input of `itest run --plan` and `itest report --plan`)')
    .action(async (o: CommonOpts & { shards: string; durations?: string; json?: boolean }) => {
      const count = parseShardCount(o.shards);
      const { selected } = await loadTests(baseConfig(o));
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
