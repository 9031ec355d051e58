// Child-process driver for the action's report step, so the real @actions/core writes workflow commands
// to stdout and files named by GITHUB_STEP_SUMMARY / GITHUB_OUTPUT exactly as on a runner.
import { readFileSync } from 'node:fs';
import { publishResults } from '../../src/action/github/publish.ts';
import { readContext } from '../../src/action/github/context.ts';
import { parseInputs } from '../../src/action/inputs.ts';
import type { Results } from '../../src/results/model.ts';

const [resultsPath, configDir] = process.argv.slice(2) as [string, string];
const r = JSON.parse(readFileSync(resultsPath, 'utf8')) as Results;
const inputs: Record<string, string> = {
  config: configDir,
  output: process.env.ITEST_TEST_OUTPUT ?? '',
  'junit-path': process.env.ITEST_TEST_JUNIT ?? '',
};
const gh = readContext(process.env);
const cfg = parseInputs((n) => inputs[n] ?? '', gh, process.env);
const up = await publishResults(r, cfg, gh, ['a warning from the run']);
console.log(`UPLOAD=${JSON.stringify(up ?? null)}`);
