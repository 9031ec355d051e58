/**
 * The mkosi options a manifest may not pass (a test's mkosi-args or the defaults'). A manifest is code:
 * its mkosi-args and qemu-args run on the host with the runner's rights, and itest does not try to sandbox
 * that. What it does refuse is what would change the cached image, the config it was built from, or boot
 * something other than a throw-away copy of it, because that outlives the test and every later run (and
 * other runs on the same cache) would boot the changed image. mkosi-args go after itest's own options and
 * before the verb, and mkosi's parser (argparse, no abbreviations) lets a later option win, so a refused
 * option would override itest's. Read from `mkosi --help` and run_verb of mkosi 24.3 and 27.1. Pure.
 */

interface Refusal {
  options: string[];
  why: string;
}

const REFUSED: Refusal[] = [
  {
    options: ['--ephemeral'],
    why: 'itest boots a throw-away snapshot of the cached image (--ephemeral=yes); any later --ephemeral wins, and "no" would boot the cached image itself, writable',
  },
  {
    options: ['-C', '--directory'],
    why: 'itest passes the config directory the cached image was built (and its cache key computed) from',
  },
  {
    options: ['-O', '--output-dir', '--output-directory'],
    why: "itest passes the cached image's directory; another one would boot (or, with a build, write) an image that is not the cached one",
  },
  {
    options: ['-f', '--force'],
    why: 'mkosi would delete the cached image and rebuild it inside the cache before booting',
  },
  {
    options: [
      '-o',
      '--output',
      '-t',
      '--format',
      '--compress-output',
      '--output-extension',
      '--image-id',
      '--image-version',
    ],
    why: "it changes the image file names mkosi looks for; mkosi 24.3 then deletes the files it would write under those names in the image directory before it fails (with --format or --compress-output, the cached image's own files)",
  },
  {
    options: ['-I', '--include', '--profile'],
    why: 'it adds configuration the cached image was not built (nor keyed) with, which can set Output=, Format= or CompressOutput= (and so delete the cached image, as with --format)',
  },
  {
    options: ['-B', '--auto-bump'],
    why: 'it writes a new version into mkosi.version in the config directory whenever mkosi builds',
  },
  {
    options: ['-w', '--wipe-build-dir'],
    why: 'mkosi 27.1 runs its clean step for it even to boot, which removes the build directory (and the image too, when Incremental= has no cache yet)',
  },
  {
    options: ['-R', '--rerun-build-scripts'],
    why: 'it reruns the build scripts against the cached image before booting it',
  },
  {
    options: ['-i', '--incremental'],
    why: "it switches mkosi's incremental build caches on or off: a build option, which decides in mkosi 27.1's clean step whether the image is removed",
  },
];

const WHY = new Map(REFUSED.flatMap((r) => r.options.map((o) => [o, r.why] as const)));

/** Options that take no value (24.3 and 27.1; -a, -i and -T take an optional one in 24.3, none in 27.1). */
const FLAGS = new Set([
  '-f',
  '--force',
  '--debug',
  '--debug-shell',
  '--debug-workspace',
  '--debug-sandbox',
  '--debug-timing',
  '--no-pager',
  '-B',
  '--auto-bump',
  '--json',
  '-w',
  '--wipe-build-dir',
  '-R',
  '--rerun-build-scripts',
  '--nspawn-keep-unit',
  '-h',
  '--help',
  '--version',
  '-a',
  '-i',
  '-T',
]);

/** mkosi's verbs (24.3 and 27.1). */
const VERBS = new Set([
  'build',
  'clean',
  'summary',
  'cat-config',
  'shell',
  'boot',
  'vm',
  'qemu',
  'ssh',
  'serve',
  'bump',
  'help',
  'genkey',
  'documentation',
  'journalctl',
  'coredumpctl',
  'burn',
  'dependencies',
  'completion',
  'sysupdate',
  'box',
  'sandbox',
  'init',
  'latest-snapshot',
]);

export interface MkosiArgProblem {
  /** Index of the offending argument. */
  index: number;
  message: string;
}

const refused = (arg: string, option: string): string =>
  `${JSON.stringify(arg)} is refused${arg.startsWith('--') || arg === option ? '' : ` (it holds ${option})`}: ${WHY.get(option)!}`;

/** Every argument of a mkosi-args list (defaults' and a test's together, in order) that itest refuses. */
export function mkosiArgProblems(args: readonly string[]): MkosiArgProblem[] {
  const out: MkosiArgProblem[] = [];
  // The previous argument was an option whose value may be this one (`--runtime-network none`).
  let valueNext = false;
  args.forEach((arg, index) => {
    const mayBeValue = valueNext;
    valueNext = false;
    if (arg === '--') {
      out.push({
        index,
        message: `"--" ends mkosi's options, so the next argument would become its verb; QEMU arguments go in qemu-args`,
      });
    } else if (arg.startsWith('--')) {
      const name = arg.split('=')[0]!;
      if (WHY.has(name)) out.push({ index, message: refused(arg, name) });
      valueNext = !arg.includes('=') && !FLAGS.has(name);
    } else if (arg.length > 1 && arg.startsWith('-')) {
      // Short options cluster (`-fB`); the first that takes a value ends the cluster (`-Cdir`, or `-C dir`).
      let reported = false;
      for (let i = 1; i < arg.length; i++) {
        const option = `-${arg[i]}`;
        if (WHY.has(option) && !reported) {
          out.push({ index, message: refused(arg, option) });
          reported = true;
        }
        if (!FLAGS.has(option)) {
          valueNext = i === arg.length - 1;
          break;
        }
      }
    } else if (!mayBeValue) {
      out.push({
        index,
        message: VERBS.has(arg)
          ? `${JSON.stringify(arg)} is a mkosi verb: mkosi-args are options placed before the verb itest runs, and a verb here would run instead of the VM, with itest's verb and QEMU arguments as its own`
          : `${JSON.stringify(arg)} is no option's value (the argument before it takes none), so mkosi would read it as its verb`,
      });
    }
  });
  return out;
}
