/** mkosi's error out of real console logs of mkosi 24.3 and 27.1 failing (test/fixtures/mkosi-errors). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkosiError, type MkosiError } from '../../src/results/mkosi-error.ts';

const DIR = new URL('../fixtures/mkosi-errors/', import.meta.url).pathname;
const lines = (name: string) => readFileSync(join(DIR, name), 'utf8').split('\n');

const expected: Record<string, { kind: MkosiError['kind']; deterministic: boolean; message: RegExp }> = {
  'mkosi27-vm-missing-pefile.console.log': {
    kind: 'missing-module',
    deterministic: true,
    message:
      /^ModuleNotFoundError: No module named 'pefile' \("\/usr\/bin\/python3" returned non-zero exit code 1\)$/,
  },
  'mkosi27-vm-missing-pefile-pyenv.console.log': {
    kind: 'missing-module',
    deterministic: true,
    message: /^ModuleNotFoundError: No module named 'pefile' \("python3" returned non-zero exit code 1\)$/,
  },
  'mkosi24-unknown-option.console.log': {
    kind: 'usage',
    deterministic: true,
    message: /^mkosi: error: unrecognized arguments: --no-such-option$/,
  },
  'mkosi27-unknown-option.console.log': {
    kind: 'usage',
    deterministic: true,
    message: /^mkosi: error: unrecognized arguments: --no-such-option$/,
  },
  'mkosi24-invalid-choice.console.log': {
    kind: 'usage',
    deterministic: true,
    message: /^mkosi: error: argument --runtime-network: invalid choice: 'bogus'/,
  },
  'mkosi27-invalid-choice.console.log': {
    kind: 'usage',
    deterministic: true,
    message: /^mkosi: error: argument --runtime-network: invalid choice: 'bogus'/,
  },
  'mkosi24-bad-size.console.log': {
    kind: 'bad-value',
    deterministic: true,
    message: /^ValueError: could not convert string to float: 'lots'$/,
  },
  'mkosi27-bad-size.console.log': {
    kind: 'bad-value',
    deterministic: true,
    message: /^ValueError: could not convert string to float: 'lots'$/,
  },
  'mkosi24-not-built.console.log': {
    kind: 'mkosi',
    deterministic: true,
    message: /^Image 'itest-demo' has not been built yet$/,
  },
  'mkosi27-not-built.console.log': {
    kind: 'mkosi',
    deterministic: true,
    message: /^Image 'main' has not been built yet$/,
  },
  'mkosi24-unknown-setting.console.log': {
    kind: 'mkosi',
    deterministic: true,
    message: /^Unknown setting NoSuchSetting$/,
  },
  'mkosi27-warning-then-not-built.console.log': {
    kind: 'mkosi',
    deterministic: true,
    message: /^Image 'main' has not been built yet$/,
  },
  'mkosi24-qemu-invalid-option.console.log': {
    kind: 'qemu',
    deterministic: true,
    message: /^qemu-system-x86_64: -no-such-qemu-flag: invalid option$/,
  },
  'mkosi27-qemu-invalid-option.console.log': {
    kind: 'qemu',
    deterministic: true,
    message:
      /^qemu-system-x86_64: -no-such-qemu-flag: invalid option \("\/usr\/bin\/qemu-system-x86_64 \.\.\." returned non-zero exit code 1\)$/,
  },
  'mkosi24-qemu-bad-device.console.log': {
    kind: 'qemu',
    deterministic: true,
    message: /'no-such-device' is not a valid device model name$/,
  },
  'mkosi27-qemu-bad-device.console.log': {
    kind: 'qemu',
    deterministic: true,
    message: /'no-such-device' is not a valid device model name \("\/usr\/bin\/qemu-system-x86_64 \.\.\."/,
  },
  // QEMU could not get its memory: may well work next time, so it stays an infrastructure error.
  'mkosi24-qemu-backing-store.console.log': {
    kind: 'qemu',
    deterministic: false,
    message: /^qemu-system-x86_64: can't open backing store \/nonexistent\/ram for guest RAM/,
  },
  'mkosi27-qemu-backing-store.console.log': {
    kind: 'qemu',
    deterministic: false,
    message:
      /^qemu-system-x86_64: can't open backing store .* \("\/usr\/bin\/qemu-system-x86_64 \.\.\." returned/,
  },
};

describe('mkosiError on real mkosi output', () => {
  it('every fixture has an expectation and every expectation a fixture', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.console.log'));
    assert.deepEqual(files.sort(), Object.keys(expected).sort());
  });

  for (const [file, want] of Object.entries(expected)) {
    it(file, () => {
      const got = mkosiError(lines(file));
      assert.ok(got, 'no error found');
      assert.equal(got.kind, want.kind);
      assert.equal(got.deterministic, want.deterministic);
      assert.match(got.message, want.message);
      // Never the hint mkosi prints after its error, and never the whole QEMU command line.
      assert.doesNotMatch(got.message, /sandbox command omitted|-machine type=q35/);
    });
  }

  it('the last line of the output is not the error: a hint follows it', () => {
    const raw = lines('mkosi27-vm-missing-pefile.console.log').filter(Boolean);
    assert.match(raw.at(-1) ?? '', /sandbox command omitted/);
  });
});

describe('mkosiError: what it does not claim', () => {
  it('nothing recognisable: undefined (the caller keeps the last line)', () => {
    const noise = lines('mkosi24-qemu-backing-store.console.log').filter((l) => !l.startsWith('qemu-system'));
    assert.equal(mkosiError(noise), undefined);
    assert.equal(mkosiError([]), undefined);
  });

  it('output from a guest that ran comes first: only what follows it counts, and it is never deterministic', () => {
    // A guest's console lines (as systemd prints them) before mkosi's real failure output.
    const guest = [
      'Welcome to Debian GNU/Linux 13 (trixie)!',
      '[  OK  ] Reached target basic.target - Basic System.',
      'Traceback (most recent call last):',
      '  File "/usr/bin/guest-test", line 1, in <module>',
      "ModuleNotFoundError: No module named 'guestonly'",
      '[  OK  ] Stopped target basic.target - Basic System.',
    ];
    const after = lines('mkosi27-qemu-backing-store.console.log');
    const e = mkosiError([...guest, ...after]);
    assert.equal(e?.kind, 'qemu');
    assert.equal(e?.deterministic, false);
    const notBuilt = mkosiError([...guest, ...lines('mkosi27-not-built.console.log')]);
    assert.match(notBuilt?.message ?? '', /has not been built yet/);
    assert.equal(notBuilt?.deterministic, false);
    // The guest's own traceback is not mkosi's error.
    assert.equal(mkosiError([...guest, 'x']), undefined);
  });

  it('a Python exception outside argument parsing is not taken as deterministic', () => {
    const e = mkosiError([
      'Traceback (most recent call last):',
      '  File "/usr/lib/python3/dist-packages/mkosi/run.py", line 1, in spawn',
      'BlockingIOError: [Errno 11] Resource temporarily unavailable',
    ]);
    assert.equal(e?.kind, 'exception');
    assert.equal(e?.deterministic, false);
  });
});
