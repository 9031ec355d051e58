/**
 * One check run (Checks API) for a Results object: verdict, counts, the summary markdown and one
 * failure annotation per failed, timed-out or errored test, on the test's unit file or manifest entry.
 *
 * Pure parts (payload, limits, slicing, head SHA) are separate from the adapter `publishCheckRun`,
 * which talks to the REST API through `@actions/github` and never throws: without a token, or with a
 * read-only one (pull requests from forks), it returns `skipped` and logs a notice saying that the job
 * summary and the annotations carry the results; any other failure is a warning.
 *
 * Conclusion: `success` exactly when the run's verdict is ok (`summary.ok`, which a merged report also
 * clears for missing shards), else `failure`, so the check agrees with the job's exit status. A run in
 * which no test ran is a `failure` too, not `neutral`: branch protection treats `neutral` as passing,
 * and a selection that matches nothing must not let a pull request through.
 *
 * Limits of the API, all enforced here: at most 50 annotations per request (the run is created with
 * the first 50 and each update appends the next 50); `output.summary` and `output.text` at most 65535
 * (documented as characters, enforced by GitHub as UTF-8 bytes: the byte count is what is kept under);
 * an annotation's `message` and `raw_details` at most 64 KiB, its `title` at most 255 characters.
 */
import { basename } from 'node:path';
import { getOctokit } from '@actions/github';
import {
  locateTests as locateInRepository,
  workspacePath,
  type TestLocation,
} from '../../config/test-locations.ts';
import { countWords, failedTests, failureVerb, type Results, type TestResult } from '../../results/model.ts';
import { findings } from '../../results/findings.ts';
import { renderSummary } from './summary.ts';
import { plainText } from '../../results/terminal.ts';
import type { GitHubContext } from './context.ts';

/** Annotations per create or update request. */
export const ANNOTATIONS_PER_REQUEST = 50;
/** `output.summary` and `output.text`: 65535 (GitHub counts UTF-8 bytes). */
export const OUTPUT_LIMIT = 65535;
/** An annotation's `message` and `raw_details`: 64 KB. */
export const MESSAGE_LIMIT = 64 * 1024;
export const ANNOTATION_TITLE_LIMIT = 255;
/** Bounds the number of requests: failures past this many get no annotation (the summary has them). */
export const MAX_ANNOTATIONS = 1000;
/** Last lines of the unit's output quoted in an annotation's message, and the width kept of each. */
export const MESSAGE_LINES = 20;
const LINE_WIDTH = 500;

export type Conclusion = 'success' | 'failure';

export interface CheckAnnotation {
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: 'failure';
  title: string;
  message: string;
  raw_details?: string;
}

export interface CheckOutput {
  title: string;
  summary: string;
  text?: string;
  annotations: CheckAnnotation[];
}

/** The body of POST /repos/{owner}/{repo}/check-runs, with every annotation (see sliceCheckRun). */
export interface CheckRunBody {
  name: string;
  head_sha: string;
  status: 'completed';
  conclusion: Conclusion;
  started_at: string;
  completed_at: string;
  details_url?: string;
  external_id?: string;
  output: CheckOutput;
}

export { manifestLine, workspacePath, type TestLocation } from '../../config/test-locations.ts';

export interface CheckRunParams {
  name: string;
  headSha: string;
  /** The repository checkout (GITHUB_WORKSPACE); annotation paths are relative to it. */
  workspace: string;
  /** Markdown for `output.summary` (e.g. the job summary); rendered from the results when absent. */
  summaryMarkdown?: string;
  /** Optional `output.text` (markdown), truncated like the summary. */
  text?: string;
  detailsUrl?: string;
  externalId?: string;
  /** Per test name, where to annotate (see locateTests); tests without one go on the manifest, line 1. */
  locations?: ReadonlyMap<string, TestLocation>;
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** The longest prefix of `s` that fits in `max` UTF-8 bytes, cut between characters. */
function prefixBytes(s: string, max: number): string {
  const buf = Buffer.from(s, 'utf8');
  if (buf.length <= max) return s;
  let end = Math.max(0, max);
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--; // never inside a multi-byte sequence
  return buf.subarray(0, end).toString('utf8');
}

/** `s` within `max` bytes; a cut one ends with `suffix`. */
export function fitBytes(s: string, max: number, suffix = '\n… (truncated)'): string {
  if (bytes(s) <= max) return s;
  return prefixBytes(s, max - bytes(suffix)) + suffix;
}

/**
 * Markdown within `limit` UTF-8 bytes (so within `limit` characters too). When cut: at a line end,
 * an open code fence and open <details> are closed, and a note says how much was left out.
 */
export function fitMarkdown(md: string, limit = OUTPUT_LIMIT): { text: string; truncated: boolean } {
  if (bytes(md) <= limit) return { text: md, truncated: false };
  const reserve = 600;
  let kept = prefixBytes(md, limit - reserve);
  const nl = kept.lastIndexOf('\n');
  if (nl > kept.length / 2) kept = kept.slice(0, nl);
  const closers: string[] = [];
  if ((kept.match(/^\s*```/gm) ?? []).length % 2 === 1) closers.push('```');
  const openDetails = (kept.match(/<details[\s>]/g) ?? []).length - (kept.match(/<\/details>/g) ?? []).length;
  for (let i = 0; i < Math.min(openDetails, 10); i++) closers.push('</details>');
  const note = `\n\n> ⚠️ Truncated to stay under the Checks API's limit of ${limit} bytes: ${bytes(md) - bytes(kept)} more bytes are in the job summary and results.json.\n`;
  const text = fitBytes(`${kept}\n${closers.join('\n')}${note}`, limit, '');
  return { text, truncated: true };
}

/** `title`: the counts, or that nothing ran. */
export function checkTitle(r: Results): string {
  const s = r.summary;
  if (s.total === 0) return 'no tests ran';
  const notPassed = s.fail + s.timeout + s.error;
  const lead = notPassed > 0 ? `${notPassed} of ${s.total} tests did not pass` : `${s.total} tests`;
  return `${lead}: ${countWords(s).join(', ')}`;
}

// Annotations show plain text: of guest lines only the control characters go (ANSI colours, bidi overrides).
const clip = (line: string) => {
  const l = plainText(line);
  return l.length > LINE_WIDTH ? `${l.slice(0, LINE_WIDTH)}…` : l;
};

/** An annotation's message: why, the unit's last lines and the rerun command, within 64 KB. */
export function annotationMessage(t: TestResult): string {
  const lines = [plainText(`${t.name} ${failureVerb(t)}: ${t.reason}`)];
  const tail = t.outputTail.slice(-MESSAGE_LINES);
  if (tail.length > 0) lines.push('', 'last lines of the unit:', ...tail.map((l) => `  ${clip(l)}`));
  if (t.rerun) lines.push('', `rerun: ${t.rerun}`);
  return fitBytes(lines.join('\n'), MESSAGE_LIMIT);
}

/** The rest of what the digest found (failed units, coredumps, sanitizers, kernel...), for raw_details. */
function rawDetails(t: TestResult): string | undefined {
  const rest = findings(t).filter((f) => f.title !== 'last lines of the unit');
  if (rest.length === 0) return undefined;
  const text = rest.map((f) => [`${f.title}:`, ...f.lines.slice(-20).map((l) => `  ${clip(l)}`)].join('\n'));
  return fitBytes(text.join('\n\n'), MESSAGE_LIMIT);
}

/** The manifest, relative to the workspace; its base name when it lies outside. */
function manifestFallback(r: Results, workspace: string): string {
  return workspacePath(r.config.manifest, workspace) ?? basename(r.config.manifest);
}

export function checkAnnotations(r: Results, p: CheckRunParams): CheckAnnotation[] {
  const fallback = manifestFallback(r, p.workspace);
  return failedTests(r)
    .slice(0, MAX_ANNOTATIONS)
    .map((t) => {
      const loc = p.locations?.get(t.name);
      const raw = rawDetails(t);
      return {
        path: loc?.path ?? fallback,
        start_line: loc?.line ?? 1,
        end_line: loc?.line ?? 1,
        annotation_level: 'failure',
        title:
          t.name.length > ANNOTATION_TITLE_LIMIT ? `${t.name.slice(0, ANNOTATION_TITLE_LIMIT - 1)}…` : t.name,
        message: annotationMessage(t),
        ...(raw ? { raw_details: raw } : {}),
      };
    });
}

/** The whole check run for `r`, every annotation included; sliceCheckRun splits it into requests. */
export function buildCheckRun(r: Results, p: CheckRunParams): CheckRunBody {
  const failed = failedTests(r).length;
  const extra =
    failed > MAX_ANNOTATIONS
      ? [`> ℹ️ Annotations were added for the first ${MAX_ANNOTATIONS} of ${failed} failing tests.`, '']
      : [];
  const markdown = p.summaryMarkdown ?? renderSummary(r, { downloadDir: 'itest-logs' }, extra, OUTPUT_LIMIT);
  const output: CheckOutput = {
    title: checkTitle(r),
    summary: fitMarkdown(markdown).text,
    annotations: checkAnnotations(r, p),
  };
  if (p.text) output.text = fitMarkdown(p.text).text;
  return {
    name: p.name,
    head_sha: p.headSha,
    status: 'completed',
    conclusion: r.summary.ok ? 'success' : 'failure',
    started_at: r.startedAt,
    completed_at: r.finishedAt,
    ...(p.detailsUrl ? { details_url: p.detailsUrl } : {}),
    ...(p.externalId ? { external_id: p.externalId } : {}),
    output,
  };
}

/** The body of PATCH /repos/{owner}/{repo}/check-runs/{id}: title and summary again, the next annotations. */
export interface CheckRunUpdate {
  output: CheckOutput;
}

/**
 * The requests that publish `run`: the create with the first 50 annotations, then one update per
 * further 50 (the API appends the annotations of an update). The run is created completed, so an
 * update that fails leaves a finished check with fewer annotations, never one stuck in progress.
 */
export function sliceCheckRun(
  run: CheckRunBody,
  per = ANNOTATIONS_PER_REQUEST,
): { create: CheckRunBody; updates: CheckRunUpdate[] } {
  const { annotations: all, ...rest } = run.output;
  const create = { ...run, output: { ...rest, annotations: all.slice(0, per) } };
  const updates: CheckRunUpdate[] = [];
  for (let i = per; i < all.length; i += per) {
    updates.push({
      output: { title: rest.title, summary: rest.summary, annotations: all.slice(i, i + per) },
    });
  }
  return { create, updates };
}

/**
 * The commit the check belongs on: the pull request's head for pull_request(_target) events
 * (GITHUB_SHA is then a merge or base commit that the pull request page does not show), the
 * triggering run's head for workflow_run (publishing from a trusted workflow after a fork's tests),
 * else GITHUB_SHA.
 */
export function checkHeadSha(gh: Pick<GitHubContext, 'eventName' | 'event' | 'sha'>): string | undefined {
  const head = gh.event?.workflow_run?.head_sha;
  if (gh.eventName === 'workflow_run' && typeof head === 'string') return head;
  const pr = gh.event?.pull_request?.head?.sha;
  if (typeof pr === 'string' && pr) return pr;
  return gh.sha;
}

/**
 * Where each failed test is annotated (reads the file system, see config/test-locations.ts). Tests
 * found in neither their unit file nor the manifest go on the manifest, line 1 (buildCheckRun's fallback).
 */
export function locateTests(r: Results, workspace: string): Map<string, TestLocation> {
  return locateInRepository(r.config, failedTests(r), workspace);
}

export interface CheckLog {
  info(message: string): void;
  notice(message: string): void;
  warning(message: string): void;
}

export interface PublishOptions {
  /** A token with `checks: write` (the workflow's GITHUB_TOKEN); empty or absent: skipped. */
  token: string | undefined;
  /** The check run's name. */
  name: string;
  /** 'owner/repo' (GITHUB_REPOSITORY). */
  repository: string | undefined;
  /** The commit to put the check on: see checkHeadSha. */
  headSha: string | undefined;
  /** REST API root (GITHUB_API_URL); default https://api.github.com. */
  apiUrl?: string;
  /** Repository checkout for annotation paths (GITHUB_WORKSPACE); default the current directory. */
  workspace?: string;
  summaryMarkdown?: string;
  text?: string;
  /** The workflow run's URL, shown as the check's details link. */
  detailsUrl?: string;
  log: CheckLog;
  /** Gives up on the API after this long in all (default 60 s); a warning, like any failure. */
  timeoutMs?: number;
}

export interface PublishResult {
  id?: number;
  url?: string;
  /** Why no check run was published (missing or read-only token, missing repository or SHA). */
  skipped?: string;
}

const GRANT =
  'the job summary and the annotations carry the results. To get a check run, grant the job `permissions: checks: write` and pass its token (pull requests from forks only ever get a read-only token)';

function describe(e: unknown): { status?: number; message: string } {
  const err = e as { status?: unknown; message?: unknown; name?: unknown };
  const status = typeof err?.status === 'number' ? err.status : undefined;
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return status !== undefined ? { status, message } : { message };
}

/** Whether an API error means "this token may not write checks" (not a rate limit). */
function isPermissionError(status: number | undefined, message: string): boolean {
  return status === 403 && !/rate limit/i.test(message);
}

/** Publishes one check run for `results`. Never throws. */
export async function publishCheckRun(results: Results, opts: PublishOptions): Promise<PublishResult> {
  const { log } = opts;
  const name = opts.name || 'itest';
  if (!opts.token) {
    const skipped = 'no token to create a check run with';
    log.notice(`check run "${name}" skipped: ${skipped}; ${GRANT}.`);
    return { skipped };
  }
  const [owner, repo, ...more] = (opts.repository ?? '').split('/');
  if (!owner || !repo || more.length > 0) {
    const skipped = `no repository as 'owner/repo' (got '${opts.repository ?? ''}')`;
    log.warning(`check run "${name}" skipped: ${skipped}.`);
    return { skipped };
  }
  if (!opts.headSha) {
    const skipped = 'no commit SHA to put the check run on';
    log.warning(`check run "${name}" skipped: ${skipped}.`);
    return { skipped };
  }
  const workspace = opts.workspace ?? process.cwd();
  let locations: Map<string, TestLocation> | undefined;
  try {
    locations = locateTests(results, workspace);
  } catch {
    locations = undefined; // the manifest fallback will do
  }
  const run = buildCheckRun(results, {
    name,
    headSha: opts.headSha,
    workspace,
    ...(opts.summaryMarkdown !== undefined ? { summaryMarkdown: opts.summaryMarkdown } : {}),
    ...(opts.text ? { text: opts.text } : {}),
    ...(opts.detailsUrl ? { detailsUrl: opts.detailsUrl } : {}),
    ...(locations ? { locations } : {}),
  });
  const { create, updates } = sliceCheckRun(run);
  const total = run.output.annotations.length;
  const baseUrl = (opts.apiUrl ?? 'https://api.github.com').replace(/\/+$/, '');
  // Per request, so that @actions/github's proxy-aware fetch (in its defaults' `request`) is kept.
  const request = { signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000) };

  let id: number;
  let url: string | undefined;
  try {
    const octokit = getOctokit(opts.token, { baseUrl });
    const res = await octokit.rest.checks.create({ owner, repo, ...create, request });
    id = res.data.id;
    url = res.data.html_url ?? undefined;
    for (let i = 0; i < updates.length; i++) {
      try {
        await octokit.rest.checks.update({ owner, repo, check_run_id: id, ...updates[i]!, request });
      } catch (e) {
        const from = (i + 1) * ANNOTATIONS_PER_REQUEST + 1;
        log.warning(
          `check run "${name}" created${url ? ` (${url})` : ''}, but adding annotations ${from}-${Math.min(total, from + ANNOTATIONS_PER_REQUEST - 1)} of ${total} failed: ${describe(e).message}; the job summary lists every failure.`,
        );
        return { id, ...(url ? { url } : {}) };
      }
    }
  } catch (e) {
    const { status, message } = describe(e);
    if (isPermissionError(status, message)) {
      const skipped = `the token may not create check runs (HTTP 403: ${message.split(' - ')[0]})`;
      log.notice(`check run "${name}" skipped: ${skipped}; ${GRANT}.`);
      return { skipped };
    }
    log.warning(
      `check run "${name}" could not be created${status ? ` (HTTP ${status})` : ''}: ${message}; the job summary and the annotations carry the results.`,
    );
    return {};
  }
  log.info(
    `check run "${name}" (${run.conclusion}) published${url ? `: ${url}` : ''}, ${total} annotation(s) in ${1 + updates.length} request(s)`,
  );
  return { id, ...(url ? { url } : {}) };
}
