/**
 * JUnit XML for CI test panels and reporters: one testcase per test and one per subtest, attempts and
 * reasons in the failure text. Pure. What the common consumers need (test/unit/junit-consumers.test.ts
 * runs their parsers on it):
 * - One classname for a test and its subtests (the test's name), so reporters that group by class
 *   (dorny/test-reporter) list the subtests under their test. Never the unit name: without `file`,
 *   mikepenz/action-junit-report takes the classname's last dotted part ("service") for a file name
 *   and annotates whatever `service.*` it finds in the repository.
 * - `file` and `line`: the unit file or manifest entry (config/test-locations.ts), where to annotate.
 * - `message` is the reason alone: the status is in `type`, which reporters print in front of it.
 * - Guest output can hold characters XML 1.0 cannot carry (ESC, NUL, lone surrogates, U+FFFF...):
 *   xmlbuilder2 replaces them everywhere, names and attributes included, so the file always parses.
 */
import { create } from 'xmlbuilder2';
import type { TestLocation } from '../config/test-locations.ts';
import type { Results, TestResult } from './model.ts';

export const SUITE_NAME = 'itest';

export interface JUnitOptions {
  /** Per test name, its unit file or manifest entry (paths relative to the repository root). */
  locations?: ReadonlyMap<string, TestLocation>;
}

function details(t: TestResult): string {
  const lines = [
    `reason: ${t.reason}`,
    `exit status: ${t.exitStatus ?? 'none'} (expected ${t.expected.shouldFail ? 'a failure' : t.expected.exitStatus})`,
    ...t.attempts.map(
      (a) =>
        `attempt ${a.attempt}: ${a.status}: ${a.reason} [${a.durations.vmSeconds} s, machine ${a.machine}]`,
    ),
    ...(t.files.journal ? [`journal: ${t.files.journal}`] : []),
    ...(t.files.console ? [`console: ${t.files.console}`] : []),
    `rerun: ${t.rerun}`,
  ];
  return lines.join('\n');
}

const isFailed = (result: string) => /^(fail|error)/i.test(result);
const isSkipped = (result: string) => /^skip/i.test(result);

/** A dot would make the name's tail look like a file extension to reporters that split on dots. */
const className = (t: TestResult) => t.name.replaceAll('.', '_');

/** The first non-empty line of a subtest's message (not its result: that is the `type`). */
const firstLine = (message: string) =>
  message
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '') ?? '(no message)';

export function renderJUnit(r: Results, opts: JUnitOptions = {}): string {
  const s = r.summary;
  const subs = r.tests.flatMap((t) => t.digest?.subtests ?? []);
  const counts = {
    tests: s.total + subs.length,
    failures: s.fail + subs.filter((x) => isFailed(x.result)).length,
    errors: s.error + s.timeout,
  };
  const skipped = s.skip + subs.filter((x) => isSkipped(x.result)).length;
  const time = r.durationSeconds.toFixed(1);
  const root = create({ version: '1.0', encoding: 'UTF-8', invalidCharReplacement: '\ufffd' }).ele(
    'testsuites',
    { name: SUITE_NAME, ...counts, time },
  );
  const suite = root.ele('testsuite', {
    name: SUITE_NAME,
    ...counts,
    skipped,
    time,
    timestamp: r.startedAt,
  });
  const props = suite.ele('properties');
  const env = r.environment;
  for (const [k, v] of Object.entries({
    mkosi: env.mkosi.version,
    qemu: env.qemu.version,
    accel: env.accel,
    transport: env.transport,
    'image.key': env.image.key,
    'image.cache': env.image.cache,
  })) {
    props.ele('property', { name: k, value: v });
  }
  for (const t of r.tests) {
    const loc = opts.locations?.get(t.name);
    const where = loc ? { file: loc.path, line: String(loc.line) } : {};
    const classname = className(t);
    const tc = suite.ele('testcase', {
      classname,
      name: t.name,
      time: t.timings.totalSeconds.toFixed(1),
      ...where,
    });
    switch (t.status) {
      case 'fail':
        tc.ele('failure', { message: t.reason, type: 'fail' }).txt(details(t));
        break;
      case 'timeout':
        tc.ele('error', { message: t.reason, type: 'timeout' }).txt(details(t));
        break;
      case 'error':
        tc.ele('error', { message: t.reason, type: 'error' }).txt(details(t));
        break;
      case 'skip':
        tc.ele('skipped', { message: t.reason });
        break;
      case 'pass':
        break;
    }
    if (t.outputTail.length > 0) tc.ele('system-out').txt(t.outputTail.join('\n'));
    // Subtests (MESSAGE_ID=27479699ef7fb3465eb94a6a2224ac15) share their test's class and location.
    for (const sub of t.digest?.subtests ?? []) {
      const sc = suite.ele('testcase', { classname, name: `${t.name}/${sub.name}`, time: '0', ...where });
      if (isFailed(sub.result))
        sc.ele('failure', { message: firstLine(sub.message), type: sub.result }).txt(sub.message);
      else if (isSkipped(sub.result)) sc.ele('skipped', { message: sub.message });
    }
  }
  return root.end({ prettyPrint: true }) + '\n';
}
