/** Publishes the check run when `check-name` is set; the Checks API client (limits, slices, read-only tokens) is checks.ts. */
import * as core from '@actions/core';
import type { ActionConfig } from './inputs.ts';
import type { Results } from '../results/model.ts';
import { checkHeadSha, publishCheckRun } from './checks.ts';
import { runUrl } from './report.ts';

export async function publishCheck(
  r: Results,
  cfg: ActionConfig,
  env: NodeJS.ProcessEnv,
  event: Record<string, unknown> | undefined,
): Promise<void> {
  if (!cfg.checkName) return;
  const details = runUrl(env);
  const res = await publishCheckRun(r, {
    token: cfg.token,
    name: cfg.checkName,
    repository: env.GITHUB_REPOSITORY ?? '',
    headSha: checkHeadSha(env, event) ?? '',
    ...(env.GITHUB_WORKSPACE ? { workspace: env.GITHUB_WORKSPACE } : {}),
    ...(details ? { detailsUrl: details } : {}),
    log: {
      info: (m) => core.info(m),
      notice: (m) => core.notice(m),
      warning: (m) => core.warning(m),
    },
  });
  if (res.url) core.info(`check run ${cfg.checkName}: ${res.url}`);
}
