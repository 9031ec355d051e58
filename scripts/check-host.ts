/**
 * The host check of `itest run`, without a build or a VM: for each mkosi, the host probe and decisions
 * (mkosi's version and dialect, the Python modules its helper scripts import and the tools its verbs
 * run, QEMU, the journal tools). Used by scripts/fresh-root-check.sh inside a fresh root.
 * Usage: node --import tsx scripts/check-host.ts [--mkosi PATH]... [--config DIR]
 * Exit status: 0 ready, 2 usage, 3 not ready (as itest's).
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { probeHost } from '../src/host/probe.ts';
import { decideHost, HostNotReady } from '../src/host/decide.ts';
import { describeMkosiRuntime } from '../src/host/mkosi-needs.ts';
import { ExitCode } from '../src/util/errors.ts';

function usage(message: string): never {
  console.error(
    `check-host: ${message}\nusage: node --import tsx scripts/check-host.ts [--mkosi PATH]... [--config DIR]`,
  );
  process.exit(ExitCode.usage);
}

let values: { mkosi?: string[]; config?: string };
try {
  ({ values } = parseArgs({
    options: { mkosi: { type: 'string', multiple: true }, config: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  usage((e as Error).message);
}

let ready = true;
for (const mkosi of values.mkosi ?? ['mkosi']) {
  const t0 = performance.now();
  const info = await probeHost({
    mkosi: [mkosi],
    checkKvm: false,
    ...(values.config ? { configDir: resolve(values.config) } : {}),
  });
  const ms = Math.round(performance.now() - t0);
  console.log(`check-host: ${mkosi}: mkosi ${info.mkosi.version ?? `unknown (${info.mkosi.error})`}`);
  if (info.mkosiReady) console.log(`  ${describeMkosiRuntime(info.mkosiReady)}`);
  console.log(
    `  QEMU ${info.qemu.version ?? info.qemu.error} (${info.qemu.binary}); journal: ${info.journalRemote ?? 'systemd-journal-remote not found'}, ` +
      `${info.journalctl ?? 'journalctl not found'} (systemd ${info.journalctlVersion ?? '?'}); coredumpctl: ${info.coredumpctl ?? 'not found'}; probe ${ms} ms`,
  );
  try {
    const plan = decideHost(info, { transport: 'auto', kvm: 'no' });
    for (const w of plan.warnings) console.log(`  warning: ${w}`);
    console.log(`  ready (${plan.dialect.name} dialect, ${plan.dialect.verb} verb)`);
  } catch (e) {
    if (!(e instanceof HostNotReady)) throw e;
    ready = false;
    for (const p of e.problems) console.log(`  NOT READY: ${p}`);
  }
}
process.exit(ready ? ExitCode.ok : ExitCode.hostNotReady);
