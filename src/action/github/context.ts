/**
 * The job's GitHub context: the runner's GITHUB_* and RUNNER_* variables and the event payload, read once
 * per step into one typed object that parseInputs (run attempt, RUNNER_TEMP), the modes, the reports and
 * the post step are handed; nothing else in the action reads them. Outside Actions every field is absent but the job ('local') and the run
 * attempt ('1'), which artifact names always carry.
 */
import { readFileSync } from 'node:fs';

/** The parts of the event payload the action reads; like the rest of it, untrusted JSON. */
export interface GitHubEvent {
  pull_request?: {
    head?: { sha?: unknown; repo?: { full_name?: unknown } };
    base?: { repo?: { full_name?: unknown } };
  };
  workflow_run?: { head_sha?: unknown };
  [field: string]: unknown;
}

export interface GitHubContext {
  /** GITHUB_JOB, the job's id in the workflow. */
  job: string;
  /** GITHUB_RUN_ATTEMPT: 1, then 2 for the first re-run, ... */
  runAttempt: string;
  /** GITHUB_RUN_ID. */
  runId?: string;
  /** GITHUB_REPOSITORY, 'owner/repo'. */
  repository?: string;
  /** The workflow run's page, from GITHUB_SERVER_URL, GITHUB_REPOSITORY and GITHUB_RUN_ID. */
  runUrl?: string;
  /** GITHUB_API_URL: the REST API root (GitHub Enterprise Server has its own). */
  apiUrl?: string;
  /** GITHUB_WORKSPACE, the checkout: check annotation paths are relative to it. */
  workspace?: string;
  /** GITHUB_SHA. */
  sha?: string;
  /** GITHUB_EVENT_NAME. */
  eventName?: string;
  /** GITHUB_REF: refs/heads/<branch>, refs/tags/<tag>, refs/pull/<n>/merge. */
  ref?: string;
  /** The payload at GITHUB_EVENT_PATH; absent when there is none or it does not parse. */
  event?: GitHubEvent;
  /** RUNNER_TEMP: per job, outside the workspace. */
  runnerTemp?: string;
  /** RUNNER_ENVIRONMENT: `github-hosted` or `self-hosted`. */
  runnerEnvironment?: string;
}

function readEvent(path: string | undefined): GitHubEvent | undefined {
  if (!path) return undefined;
  try {
    const e: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return typeof e === 'object' && e !== null && !Array.isArray(e) ? (e as GitHubEvent) : undefined;
  } catch {
    return undefined;
  }
}

/** The context of this step; pure when the event is given (tests). */
export function readContext(
  env: NodeJS.ProcessEnv = process.env,
  event: GitHubEvent | undefined = readEvent(env.GITHUB_EVENT_PATH),
): GitHubContext {
  const set = (v: string | undefined) => v || undefined;
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repository, GITHUB_RUN_ID: runId } = env;
  return {
    job: env.GITHUB_JOB ?? 'local',
    runAttempt: env.GITHUB_RUN_ATTEMPT ?? '1',
    runId: set(runId),
    repository: set(repository),
    runUrl: server && repository && runId ? `${server}/${repository}/actions/runs/${runId}` : undefined,
    apiUrl: set(env.GITHUB_API_URL),
    workspace: set(env.GITHUB_WORKSPACE),
    sha: set(env.GITHUB_SHA),
    eventName: set(env.GITHUB_EVENT_NAME),
    ref: set(env.GITHUB_REF),
    event,
    runnerTemp: set(env.RUNNER_TEMP),
    runnerEnvironment: set(env.RUNNER_ENVIRONMENT),
  };
}
