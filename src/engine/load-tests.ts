/** Loads the manifest, discovers units and selects tests: everything that can fail before a VM starts. */
import { loadManifest, type Manifest } from '../config/manifest.ts';
import { findUnitFiles } from '../config/discovery.ts';
import { resolveTests, selectTests } from '../config/resolve-tests.ts';
import type { RunConfig } from '../config/run-config.ts';
import type { TestSpec } from '../config/test-spec.ts';

export async function loadTests(
  cfg: Pick<RunConfig, 'configDir' | 'manifestPath' | 'tests' | 'tags' | 'timeout'> &
    Partial<Pick<RunConfig, 'door'>>,
): Promise<{
  manifest: Manifest;
  all: TestSpec[];
  selected: TestSpec[];
}> {
  const manifest = await loadManifest(cfg.manifestPath, cfg.door);
  const units = await findUnitFiles(cfg.configDir, manifest.discover?.extraTrees);
  const all = resolveTests(manifest, units);
  const selected = selectTests(all, { tests: cfg.tests, tags: cfg.tags }, cfg.door).map((t) =>
    cfg.timeout !== undefined ? { ...t, timeout: cfg.timeout } : t,
  );
  return { manifest, all, selected };
}
