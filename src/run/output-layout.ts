/**
 * The output directory's layout: the one definition of every file name in it. The engine writes by it,
 * the merge and the action read by it, and the post step finds a cancelled run's files by it, so a rename
 * here is a rename everywhere. Pure (path arithmetic only).
 *
 *   results.json, junit.xml, image-build.log     the run
 *   <test>.journal, <test>.console.log           each test's latest attempt
 *   <test>.attempt-<n>.{journal,console.log}     its earlier attempts, moved aside before a retry
 *   <test>[.attempt-<n>].journal.export          the raw serial journal stream, kept when it could not be converted
 *   <test>@<32hex>-<16hex>-<16hex>.journal       what systemd-journal-remote rotated out of <test>.journal
 *   .work/<test>/status, .work/<test>/journal.export   a running VM's serial channels (deleted at the end)
 *   .image/                                      the image of a --no-cache run
 */
import { basename, join } from 'node:path';
import { safeFileName } from '../util/sanitize.ts';

export const RESULTS_FILE = 'results.json';
export const JUNIT_FILE = 'junit.xml';
export const BUILD_LOG = 'image-build.log';
const WORK = '.work';
const STATUS = 'status';
const JOURNAL_EXPORT = 'journal.export';
const KEPT_EXPORT = '.journal.export';
const ROTATED = /^(.+)@[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{16}\.journal$/;

export interface TestFiles {
  /** The test's name made safe for a file name. */
  base: string;
  journal: string;
  console: string;
  /** The test's work directory while its VM runs. */
  work: string;
  /** The virtio-serial status channel's file. */
  status: string;
  /** The virtio-serial journal export stream (serial transport). */
  journalExport: string;
  /**
   * Where the export stream goes when systemd-journal-remote could not turn it into the journal: beside the
   * console log, since the work directory is deleted and the stream is then the journal's only copy.
   */
  keptExport: string;
  /** Where attempt n's files go when a later attempt follows. */
  attempt(n: number): { journal: string; console: string; keptExport: string };
}

/** What a file name in the output directory is, read back (the post step's view of a cancelled run). */
export interface OutputFile {
  test: string;
  kind: 'journal' | 'console' | 'journal-export';
  attempt?: number;
}

export class OutputLayout {
  constructor(readonly dir: string) {}

  get results(): string {
    return join(this.dir, RESULTS_FILE);
  }
  get junit(): string {
    return join(this.dir, JUNIT_FILE);
  }
  get buildLog(): string {
    return join(this.dir, BUILD_LOG);
  }
  /** Every test's work directory; deleted when the run ends. */
  get workRoot(): string {
    return join(this.dir, WORK);
  }
  /** The image of a run without a cache. */
  get throwawayImage(): string {
    return join(this.dir, '.image');
  }

  test(name: string): TestFiles {
    const base = safeFileName(name);
    const work = join(this.dir, WORK, base);
    return {
      base,
      journal: join(this.dir, `${base}.journal`),
      console: join(this.dir, `${base}.console.log`),
      work,
      status: join(work, STATUS),
      journalExport: join(work, JOURNAL_EXPORT),
      keptExport: join(this.dir, `${base}${KEPT_EXPORT}`),
      attempt: (n) => ({
        journal: join(this.dir, `${base}.attempt-${n}.journal`),
        console: join(this.dir, `${base}.attempt-${n}.console.log`),
        keptExport: join(this.dir, `${base}.attempt-${n}${KEPT_EXPORT}`),
      }),
    };
  }

  /**
   * Whether a file is one systemd-journal-remote rotated out of `journal`: it renames the full file to
   * `<base>@<seqnum id>-<head seqnum>-<head realtime>.journal` (32, 16 and 16 hex digits). Exact, since a
   * test's own name may contain `@`.
   */
  static isRotatedJournal(fileName: string, journal?: string): boolean {
    const m = ROTATED.exec(fileName);
    return m !== null && (journal === undefined || m[1] === basename(journal, '.journal'));
  }

  /** A test's journal, console log or kept export stream (latest or of attempt n), read back from its file name. */
  static parse(fileName: string): OutputFile | undefined {
    if (OutputLayout.isRotatedJournal(fileName)) return undefined;
    const m = /^(.+?)(?:\.attempt-(\d+))?\.(journal|console\.log|journal\.export)$/.exec(fileName);
    if (!m) return undefined;
    return {
      test: m[1]!,
      kind: m[3] === 'journal' ? 'journal' : m[3] === 'console.log' ? 'console' : 'journal-export',
      ...(m[2] ? { attempt: Number(m[2]) } : {}),
    };
  }

  /**
   * Whether a name at the top of the directory is one of the layout's files: the run's own, a test's
   * journal or console log of any attempt, or a rotated journal (what a cancelled run leaves worth keeping).
   */
  static isOutputFile(fileName: string): boolean {
    return (
      [RESULTS_FILE, JUNIT_FILE, BUILD_LOG].includes(fileName) ||
      OutputLayout.parse(fileName) !== undefined ||
      OutputLayout.isRotatedJournal(fileName)
    );
  }

  /** The files of the run itself (not of a test) worth keeping. */
  runFiles(): string[] {
    return [this.results, this.junit, this.buildLog];
  }

  /** The test whose status channel a VM's command line names, if any (the post step's leftovers). */
  statusPattern(): RegExp {
    const dir = `${this.dir.replace(/\/+$/, '')}/${WORK}/`;
    return new RegExp(`${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^/\\s,]+)/${STATUS}`);
  }
}
