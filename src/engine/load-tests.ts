/** Loads the manifest, discovers units and selects tests: everything that can fail before a VM starts. */
import { loadManifest, type Manifest } from '../config/manifest.ts';
import { findUnitFiles } from '../config/discovery.ts';
import { resolveTests, selectTests } from '../config/resolve-tests.ts';
import { scaledTimeoutProblem, type RunConfig } from '../config/run-config.ts';
import type { TestSpec } from '../config/test-spec.ts';
import { spell } from '../config/settings.ts';
import { UserError } from '../util/errors.ts';
import { loadMesonSuite } from '../config/meson-suite.ts';
import { applySystemdEnvironment, systemdEnvironment } from '../config/systemd-env.ts';

export async function loadTests(
  cfg: Pick<RunConfig, 'configDir' | 'manifestPath' | 'tests' | 'tags' | 'timeout'> &
    Partial<Pick<RunConfig, 'door' | 'timeoutScale' | 'shard' | 'mesonBuildDir' | 'mesonSuite' | 'env'>>,
): Promise<{
  manifest: Manifest;
  all: TestSpec[];
  selected: TestSpec[];
}> {
  // No tests selects every test; a shard's empty list must select none (selectShard refuses one already).
  if (cfg.shard && cfg.tests.length === 0)
    throw new UserError(
      `${spell(cfg.door ?? 'cli', 'shard', String(cfg.shard.index))}: the shard has no tests: nothing to run`,
    );
  const { manifest, all } = cfg.mesonBuildDir
    ? await mesonTests(cfg.mesonBuildDir, cfg.mesonSuite, cfg.env ?? {})
    : await manifestTests(cfg.manifestPath, cfg.configDir, cfg.door);
  const selected = selectTests(all, { tests: cfg.tests, tags: cfg.tags }, cfg.door).map((t) =>
    cfg.timeout !== undefined ? { ...t, timeout: cfg.timeout } : t,
  );
  // A scale the user set can take a valid timeout out of what the engine can arm (1 and 3 cannot).
  if (cfg.timeoutScale !== undefined)
    for (const t of selected) {
      const problem = scaledTimeoutProblem(t.timeout, cfg.timeoutScale, cfg.door ?? 'cli');
      if (problem)
        throw new UserError(
          `${cfg.timeout !== undefined ? spell(cfg.door ?? 'cli', 'timeout', String(cfg.timeout)) : `${manifest.path}: test ${t.name}: timeout`}: ${problem}`,
        );
    }
  return { manifest, all, selected };
}

async function manifestTests(path: string, configDir: string, door: RunConfig['door'] | undefined) {
  const manifest = await loadManifest(path, door);
  const units = await findUnitFiles(configDir, manifest.discover?.extraTrees);
  return { manifest, all: resolveTests(manifest, units) };
}

/** A meson suite's tests, with systemd's environment variables applied; no manifest (an empty one). */
async function mesonTests(buildDir: string, suite: string | undefined, env: NodeJS.ProcessEnv) {
  const imported = await loadMesonSuite(buildDir, suite ? { suite } : {});
  const manifest: Manifest = { path: imported.origin, version: 1, defaults: {}, tests: [] };
  return { manifest, all: applySystemdEnvironment(imported.tests, systemdEnvironment(env)) };
}
