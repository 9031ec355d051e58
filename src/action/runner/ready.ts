/**
 * What a mode that runs mkosi needs from the runner first: the mkosi release it asked for and the Python
 * modules that release needs beyond its own tree, unprivileged user namespaces (mkosi builds and boots in
 * them), and the KVM and vhost devices when VMs boot.
 */
import * as core from '@actions/core';
import type { ActionConfig } from '../inputs.ts';
import { installMkosiRelease } from './mkosi-release.ts';
import {
  allowUserNamespaces,
  aptInstall,
  setupRunner,
  type CommandRunner,
  type DeviceCheck,
} from './setup.ts';
import { mkosiModuleNeeds, mkosiRuntimeNeeds } from '../../host/mkosi-needs.ts';
import { probeMkosiRuntime } from '../../host/mkosi-runtime-probe.ts';

/** How readyRunner changes the runner: the commands and checks of setup.ts (tests inject their own). */
export interface RunnerDeps {
  run?: CommandRunner;
  root?: boolean;
  read?: (path: string) => Promise<string | undefined>;
  check?: DeviceCheck;
}

/** Readies the runner; returns the mkosi command to run (the installed release's, else the configured one). */
export async function readyRunner(
  cfg: ActionConfig,
  log: (line: string) => void,
  p: { vms: boolean; warn?: (line: string) => void },
  deps: RunnerDeps = {},
): Promise<string[]> {
  const release = cfg.mkosiRelease
    ? await installMkosiRelease(cfg.mkosiRelease, { env: cfg.run.env, log })
    : undefined;
  const { run, root, read, check } = deps;
  const given = { ...(run ? { run } : {}), ...(root !== undefined ? { root } : {}) };
  if (cfg.setupRunner) {
    await allowUserNamespaces(log, { ...given, ...(read ? { read } : {}) });
    if (release)
      await installMkosiModules(release, log, p.warn ?? ((w) => core.warning(w)), {
        env: cfg.run.env,
        configDir: cfg.run.configDir,
        ...given,
      });
    if (p.vms) await setupRunner(log, { ...given, ...(check ? { check } : {}) });
  } else if (cfg.setupRunnerSkipped) log(`runner setup: ${cfg.setupRunnerSkipped}`);
  return release ? release.command : cfg.run.mkosi;
}

export interface MkosiModulesDeps {
  /** Environment of the probe (PATH, MKOSI_INTERPRETER); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The mkosi config: with a tools tree the modules come from that tree, and nothing is installed. */
  configDir?: string;
  probe?: typeof probeMkosiRuntime;
  run?: CommandRunner;
  root?: boolean;
}

/**
 * A release installed from its source archive brings mkosi's own modules only. When the host check would
 * find a Python module that this mkosi version needs missing (pefile for mkosi 26+, which reads the kernel
 * with it before every vm), installs its package with apt, as the reusable workflow does with
 * scripts/host-packages.txt. Returns the packages installed; a failed install is a warning that names them
 * (the host check then stops with exit 3 and the command to install them).
 */
export async function installMkosiModules(
  mkosi: { command: string[]; version: string },
  log: (line: string) => void,
  warn: (line: string) => void,
  deps: MkosiModulesDeps = {},
): Promise<string[]> {
  const modules = mkosiModuleNeeds(mkosi.version);
  if (modules.length === 0) return [];
  const probe = deps.probe ?? probeMkosiRuntime;
  const rt = await probe(mkosi.command, {
    modules,
    tools: [],
    ...(deps.env ? { env: deps.env } : {}),
    ...(deps.configDir ? { configDir: deps.configDir } : {}),
  });
  // The host check's own verdict, so this installs exactly what it would stop for.
  const missing = mkosiRuntimeNeeds(mkosi.version, rt).problems.filter((p) => p.modules.length > 0);
  if (missing.length === 0) return [];
  const packages = [...new Set(missing.flatMap((p) => p.apt))];
  const names = packages.join(' ');
  for (const p of missing) log(`runner setup: ${p.text}`);
  const r = await aptInstall(packages, {
    ...(deps.run ? { run: deps.run } : {}),
    ...(deps.root !== undefined ? { root: deps.root } : {}),
  });
  if (r.installed) {
    log(
      `runner setup: installed ${names} for mkosi ${mkosi.version} (${r.command})` +
        (r.failures.length ? `; before it, ${r.failures.join('; ')}` : ''),
    );
    return packages;
  }
  const needed = [...new Set(missing.flatMap((p) => p.modules))].join(', ');
  warn(
    `runner setup: could not install ${names}, which mkosi ${mkosi.version} needs (Python module ${needed}): ` +
      `${r.failures.join('; ')}. The host check will stop and name the command to install it`,
  );
  return [];
}
