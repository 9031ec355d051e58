/** What each mode of the main step is handed, and what it hands back (main.ts picks the mode). */
import type { ActionConfig } from '../inputs.ts';
import type { GitHubContext } from '../github/context.ts';
import type { Ui } from '../../engine/ui.ts';
import type { Results } from '../../results/model.ts';

export interface Step {
  cfg: ActionConfig;
  gh: GitHubContext;
  ui: Ui;
  /** The run's warnings so far; the summary and the annotations list them. */
  warnings: string[];
  /** The user's `label` and this job's shard: what tells the jobs of one run apart in artifact names. */
  label?: string;
}

/** One mode. The results it returns get the check run and decide the step's verdict; prepare has none. */
export type Mode = (step: Step) => Promise<Results | undefined>;
