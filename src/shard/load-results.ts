/** Finds and reads the results.json files of downloaded shard artifacts (one directory per artifact). */
import { glob } from 'glob';
import { Ajv } from 'ajv';
import resultsSchema from '../../schemas/results.schema.json' with { type: 'json' };
import { RESULTS_VERSION, type Results } from '../results/model.ts';
import type { ShardResults } from './merge.ts';
import { checkSchema, parseJsonInput, readInputFile } from '../config/input-file.ts';
import { INPUT_LIMITS } from '../config/settings.ts';
import { UserError } from '../util/errors.ts';
import { RESULTS_FILE } from '../run/output-layout.ts';

// Formats (date-time) are not checked: the merge never parses them, and ajv-formats is no runtime dependency.
const validate = new Ajv({ strict: false, validateFormats: false }).compile(resultsSchema);

/**
 * One results.json, checked against schemas/results.schema.json (within the size and test caps first), so
 * that the merge works on the shape it expects; anything else is a UserError naming the file and field.
 */
export async function readResultsFile(path: string): Promise<Results> {
  const notA = `not a results.json of version ${RESULTS_VERSION}`;
  const fix = 'pass the results.json of an itest run (schemas/results.schema.json)';
  const text = await readInputFile(path, INPUT_LIMITS.resultsBytes, 'a results.json');
  const data = parseJsonInput(text, path, fix);
  const tests = (data as { tests?: unknown } | null)?.tests;
  if (Array.isArray(tests) && tests.length > INPUT_LIMITS.tests)
    throw new UserError(
      `${path}: tests: ${tests.length} tests, more than the ${INPUT_LIMITS.tests} itest runs`,
    );
  return checkSchema<Results>(validate, data, path, notA, fix);
}

export async function loadShardResults(
  dirs: string[],
): Promise<{ inputs: ShardResults[]; problems: string[] }> {
  const inputs: ShardResults[] = [];
  const problems: string[] = [];
  for (const dir of dirs) {
    const files = (await glob(`**/${RESULTS_FILE}`, { cwd: dir, absolute: true, nodir: true })).sort();
    if (files.length === 0) problems.push(`${dir}: no ${RESULTS_FILE} in it`);
    for (const f of files) {
      try {
        inputs.push({ source: f, results: await readResultsFile(f) });
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        // A shard whose results cannot be read is a missing shard: the merge still reports the others.
        problems.push(`${e.message}; its shard counts as missing`);
      }
    }
  }
  if (inputs.length === 0)
    throw new UserError(
      `no shard results found in ${dirs.join(', ')}${problems.length ? ` (${problems.join('; ')})` : ''}. ` +
        'Fix: download every shard results artifact into these directories first',
    );
  return { inputs, problems };
}
