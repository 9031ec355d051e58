/**
 * What this run started, recorded by the main step so that the post step, after a cancel or a crash,
 * stops exactly that and nothing else, whatever the output directory is: the main step's own process
 * (its PID and start time: nothing that started before it is ever taken for ours), the machine name of
 * every VM with its test (the engine passes `--machine=<name>` in each VM's argv, and QEMU and the helpers
 * mkosi starts carry it too), and the directories its image is built in (mkosi `--output-dir`) and booted
 * from.
 *
 * One JSON line per fact, appended to a file outside the workspace whose path state.ts hands over: a line
 * is on disk the moment it is written, so a SIGKILL of main loses nothing, and the record grows with the
 * run without growing the post step's environment (as state would: one variable, rewritten whole).
 */
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Ui } from '../../engine/ui.ts';
import type { OutputLayout } from '../../run/output-layout.ts';
import { procStart } from '../../util/proc-stat.ts';

export interface StartedVm {
  machine: string;
  /** The test's file name base, as the output directory names it. */
  test: string;
}

export interface Started {
  /** The main step's process; without it nothing counts as this run's. */
  main?: { pid: number; start: number };
  vms: StartedVm[];
  /** Directories the run builds its image in (mkosi --output-dir is one or lies below one) and boots it from. */
  imageDirs: string[];
}

/** The machine name in a VM's argv (`--machine=NAME` or `--machine NAME`). */
export function machineOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i]!.startsWith('--machine=')) return argv[i]!.slice('--machine='.length) || undefined;
    if (argv[i] === '--machine') return argv[i + 1];
  }
  return undefined;
}

export class StartedRecord {
  private constructor(readonly path: string) {}

  /** A fresh record at `path`: the main step's process and the image directories, before anything starts. */
  static async create(path: string, imageDirs: string[]): Promise<StartedRecord> {
    const start = await procStart('self');
    const lines = [
      ...(start !== undefined ? [{ main: { pid: process.pid, start } }] : []),
      { imageDirs: imageDirs.map((d) => resolve(d)) },
    ];
    rmSync(path, { force: true });
    writeFileSync(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''), { flag: 'wx' });
    return new StartedRecord(path);
  }

  /** Records the VM this argv starts for `test`. */
  vm(argv: readonly string[], test: string): void {
    const machine = machineOf(argv);
    if (!machine) return;
    try {
      appendFileSync(this.path, `${JSON.stringify({ vm: { machine, test } })}\n`);
    } catch {
      // A full disk must not fail the test; the engine still ends its own VMs, only a post step would miss it.
    }
  }

  /** Main finished: nothing is left for the post step to stop. */
  discard(): void {
    rmSync(this.path, { force: true });
  }
}

/** `ui`, recording each VM it is told of before it passes the news on. */
export function recordingUi(ui: Ui, record: StartedRecord, layout: OutputLayout): Ui {
  return {
    ...ui,
    testStart: (spec, attempt, argv) => {
      record.vm(argv, layout.test(spec.name).base);
      ui.testStart(spec, attempt, argv);
    },
  };
}

/** The record at `path` as the post step reads it; empty (nothing is ours) when absent or unreadable. */
export async function readStarted(path: string | undefined): Promise<Started> {
  const out: Started = { vms: [], imageDirs: [] };
  const text = path ? await readFile(path, 'utf8').catch(() => '') : '';
  for (const line of text.split('\n')) {
    let l: unknown;
    try {
      l = JSON.parse(line);
    } catch {
      continue; // An empty last line, or one cut short by a kill.
    }
    if (typeof l !== 'object' || l === null) continue;
    const { main, vm, imageDirs } = l as Record<string, unknown>;
    const m = main as Started['main'];
    if (m && Number.isInteger(m.pid) && Number.isInteger(m.start)) out.main = { pid: m.pid, start: m.start };
    const v = vm as StartedVm | undefined;
    if (v && typeof v.machine === 'string' && typeof v.test === 'string')
      out.vms.push({ machine: v.machine, test: v.test });
    if (Array.isArray(imageDirs)) out.imageDirs.push(...imageDirs.filter((d) => typeof d === 'string'));
  }
  return out;
}
