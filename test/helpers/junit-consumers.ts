/**
 * Runs the vendored JUnit parsers of mikepenz/action-junit-report and dorny/test-reporter
 * (test/third_party/) on one file, with each action's default inputs, and reports what a user would see.
 *
 * The parsers run in a child process (`readJUnitConsumers`): upstream imports interfaces without
 * `import type`, which needs tsx's settings from test/third_party/tsconfig.json rather than the
 * project's (verbatimModuleSyntax), and @actions/core writes its log lines to stdout. The child's
 * working directory and GITHUB_WORKSPACE are the repository tree, as on a runner.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const THIRD_PARTY = fileURLToPath(new URL('../third_party/', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
/** By URL: the child's working directory is the repository tree, where `--import tsx` would not resolve. */
const TSX = import.meta.resolve('tsx');

export interface MikepenzView {
  totalCount: number;
  passed: number;
  failed: number;
  skipped: number;
  /** The check run's annotations (failed tests, the action's default `include_passed: false`). */
  annotations: { path: string; start_line: number; title: string; message: string; status: string }[];
}

export interface DornyView {
  passed: number;
  failed: number;
  skipped: number;
  groups: { name: string; tests: { name: string; result: string; message?: string }[] }[];
  /** The markdown report (job summary / check run text). */
  report: string;
  annotations: { path: string; title?: string; message: string }[];
}

export interface ConsumerViews {
  mikepenz: MikepenzView;
  dorny: DornyView;
}

async function listFiles(dir: string, root = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p, root)));
    else out.push(relative(root, p));
  }
  return out;
}

/** Dynamic imports by computed paths: tsc does not follow them into the (unchecked) upstream code. */
const load = async (path: string): Promise<Record<string, unknown>> =>
  (await import(pathToFileURL(join(THIRD_PARTY, path)).href)) as Record<string, unknown>;

type Fn = (...args: unknown[]) => Promise<unknown> | unknown;

/** In the child: parse `xmlPath` with both, in the current directory as the repository. */
async function parseHere(xmlPath: string): Promise<ConsumerViews> {
  const mikepenzParser = await load('action-junit-report/src/testParser.ts');
  const m = (await (mikepenzParser.parseTestReports as Fn)(
    'itest', // check_name
    '', // summary
    xmlPath, // report_paths
    '', // suite_regex
    false, // include_passed
    false, // annotate_notice
    false, // check_retries
    ['/build/', '/__pycache__/'], // exclude_sources
    undefined, // check_title_template
    '/', // bread_crumb_delimiter
    '', // test_files_prefix
    [], // transformers
    false, // follow_symlink
    -1, // annotations_limit
    true, // truncate_stack_traces
    true, // fail_on_parse_error (default false: a broken file would only log and count nothing)
    false, // resolve_ignore_classname
  )) as MikepenzView & { globalAnnotations: MikepenzView['annotations'] };

  const { JavaJunitParser } = (await load('test-reporter/src/parsers/java-junit/java-junit-parser.ts')) as {
    JavaJunitParser: new (o: unknown) => { parse(p: string, c: string): Promise<unknown> };
  };
  const { getReport, DEFAULT_OPTIONS } = await load('test-reporter/src/report/get-report.ts');
  const { getAnnotations } = await load('test-reporter/src/report/get-annotations.ts');
  const parser = new JavaJunitParser({
    parseErrors: true,
    workDir: process.cwd(),
    trackedFiles: await listFiles(process.cwd()),
  });
  type Run = {
    passed: number;
    failed: number;
    skipped: number;
    suites: {
      groups: { name: string; tests: { name: string; result: string; error?: { message?: string } }[] }[];
    }[];
  };
  const run = (await parser.parse(relative(process.cwd(), xmlPath), await readFile(xmlPath, 'utf8'))) as Run;
  const dorny: DornyView = {
    passed: run.passed,
    failed: run.failed,
    skipped: run.skipped,
    groups: run.suites.flatMap((s) =>
      s.groups.map((g) => ({
        name: g.name,
        tests: g.tests.map((t) => ({
          name: t.name,
          result: t.result,
          ...(t.error?.message !== undefined ? { message: t.error.message } : {}),
        })),
      })),
    ),
    // The action's defaults: list all suites and tests, 10 annotations.
    report: (getReport as Fn)([run], DEFAULT_OPTIONS) as string,
    annotations: (getAnnotations as Fn)([run], 10) as DornyView['annotations'],
  };
  return {
    mikepenz: {
      totalCount: m.totalCount,
      passed: m.passed,
      failed: m.failed,
      skipped: m.skipped,
      annotations: m.globalAnnotations.map((a) => ({
        path: a.path,
        start_line: a.start_line,
        title: a.title,
        message: a.message,
        status: a.status,
      })),
    },
    dorny,
  };
}

/** What both reporters make of `xmlPath` when run in the repository tree `repo`. */
export async function readJUnitConsumers(xmlPath: string, repo: string): Promise<ConsumerViews> {
  const dir = await mkdtemp(join(tmpdir(), 'itest-junit-consumers-'));
  try {
    const out = join(dir, 'views.json');
    await new Promise<void>((done, fail) => {
      execFile(
        process.execPath,
        ['--import', TSX, SELF, xmlPath, out],
        {
          cwd: repo,
          env: {
            ...process.env,
            TSX_TSCONFIG_PATH: join(THIRD_PARTY, 'tsconfig.json'),
            GITHUB_WORKSPACE: repo,
          },
          maxBuffer: 16 * 1024 * 1024,
        },
        (err, _stdout, stderr) =>
          err ? fail(new Error(`JUnit consumers failed: ${err.message}\n${stderr}`)) : done(),
      );
    });
    return JSON.parse(await readFile(out, 'utf8')) as ConsumerViews;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === SELF) {
  const [xmlPath, out] = process.argv.slice(2);
  await writeFile(out!, JSON.stringify(await parseHere(xmlPath!)));
}
