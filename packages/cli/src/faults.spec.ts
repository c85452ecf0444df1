import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { encodeIdx } from '@l2l/optimizees';
import { fileHashes, lostFiles, runCli, STACK, toyExperiment, writeJson, writeUserFiles, type CliRun } from './faults.fixture';

/**
 * The fault suite: one row per fault (bad configs, oversized problems, bad command lines, dangerous output
 * locations, locks, corrupt checkpoints, hostile plugins, corrupt data), each run through the CLI in-process in a fresh
 * directory holding the user's own files and a toy experiment (exp.json). Every row checks the exit code, a
 * fragment of the message, that no stack trace or "internal error" is printed, that every file present before
 * is still there unchanged (nothing lost), that no tensor leaked, and that it answered within a timeout.
 * Faults that need a real process (kill -9, two runs at once, a full disk) are in faults-process.spec.ts. With
 * L2L_FAULTS_BIN each case runs a built bin.js as a child process instead (bench/fault-table-before.sh: the table
 * against older commits, docs/faults.md).
 */

interface Fault {
  name: string;
  /** Writes what the fault needs into the case directory (exp.json, the user's files and a trained `run/` are there). */
  setup?: (dir: string) => void;
  argv: string[];
  code: number;
  /** A fragment of stderr (of stdout when the command succeeds). */
  message: RegExp;
  /** Paths that must not exist afterwards (a refusal comes before anything is written). */
  absent?: string[];
  /** Files that may change (a successful resume appends to log.csv, say). */
  mayChange?: RegExp;
  /** A further check of what is on disk afterwards. */
  check?: (dir: string, r: CliRun) => void;
}

let root: string;
let trainedRun: string;

/** A copy of the trained toy run (2 epochs) at `dir/run`. */
function copyRun(dir: string, name = 'run'): string {
  const to = path.join(dir, name);
  fs.cpSync(trainedRun, to, { recursive: true });
  return to;
}

function editJson(file: string, edit: (value: any) => unknown): void {
  const value = JSON.parse(fs.readFileSync(file, 'utf8'));
  const out = edit(value);
  fs.writeFileSync(file, JSON.stringify(out === undefined ? value : out, null, 2));
}

function setFloat(file: string, index: number, value: number): void {
  const bytes = fs.readFileSync(file);
  bytes.writeFloatLE(value, 4 * index);
  fs.writeFileSync(file, bytes);
}

// ---------------------------------------------------------------------------------------------------------------
// Bad configs: each is refused by validate, and by train before --out is created.

type Edit = (c: any) => unknown;
const configFaults: Array<[string, Edit | string, RegExp]> = [];

const counts: Array<[string, string]> = [
  ['training', 'epochs'],
  ['training', 'episodesPerEpoch'],
  ['training', 'steps'],
  ['training', 'unroll'],
  ['training', 'validateEvery'],
  ['training', 'validationTasks'],
  ['evaluation', 'steps'],
  ['evaluation', 'tasks'],
];
for (const [section, field] of counts) {
  for (const bad of [0, -1, 1.5, '3', null]) {
    configFaults.push([
      `${section}.${field} = ${JSON.stringify(bad)}`,
      (c) => void (c[section][field] = bad),
      new RegExp(`${section}\\.${field} must be an integer ≥ 1, got ${JSON.stringify(bad).replace('.', '\\.')}`),
    ]);
  }
}
configFaults.push(
  ['a missing optimizee', (c) => void delete c.optimizee, /missing field "optimizee"/],
  ['an unknown top-level field', (c) => void (c.optimzee = {}), /unknown field "optimzee"/],
  ['an optimizee that is a string', (c) => void (c.optimizee = 'quadratic'), /optimizee must be an object/],
  ['an optimizee without a type', (c) => void (c.optimizee = { options: {} }), /missing field "optimizee.type"/],
  ['an unknown optimizee type', (c) => void (c.optimizee.type = 'quadratik'), /unknown optimizee type "quadratik" \(known: .*quadratic/],
  ['an unknown meta-optimizer type', (c) => void (c.metaOptimizer.type = 'lstn'), /metaOptimizer: unknown meta-optimizer type "lstn"/],
  ['an unknown baseline type', (c) => void (c.evaluation.baselines = [{ type: 'adamw' }]), /evaluation\.baselines\[0\]: unknown optimizer type "adamw"/],
  ['optimizee options that are an array', (c) => void (c.optimizee.options = [1]), /optimizee.options must be an object/],
  ['an unknown optimizee option', (c) => void (c.optimizee.options.dimz = 3), /optimizee "quadratic": unknown field "dimz"/],
  ['quadratic dims 0', (c) => void (c.optimizee.options.dims = 0), /optimizee "quadratic": dims must be an integer ≥ 1, got 0/],
  ['quadratic dims "3"', (c) => void (c.optimizee.options.dims = '3'), /dims must be an integer ≥ 1, got "3"/],
  ['quadratic batch -2', (c) => void (c.optimizee.options.batch = -2), /batch must be an integer ≥ 1, got -2/],
  ['quadratic distribution "cauchy"', (c) => void (c.optimizee.options.distribution = 'cauchy'), /distribution must be one of "normal", "uniform", got "cauchy"/],
  ['lstm hidden 0', (c) => void (c.metaOptimizer.options.hidden = 0), /metaOptimizer \(meta-optimizer "lstm"\): hidden must be an integer ≥ 1, got 0/],
  ['lstm layers 1.5', (c) => void (c.metaOptimizer.options.layers = 1.5), /layers must be an integer ≥ 1, got 1\.5/],
  ['an unknown lstm option', (c) => void (c.metaOptimizer.options.hiden = 4), /unknown field "hiden"/],
  ['backend "webgl" in the config', (c) => void (c.backend = 'webgl'), /backend must be one of "auto", "wasm", "cpu", "tensorflow", "webgpu", got "webgl"/],
  ['a negative seed', (c) => void (c.seed = -1), /seed must be an integer ≥ 0, got -1/],
  ['a fractional seed', (c) => void (c.seed = 0.5), /seed must be an integer ≥ 0, got 0\.5/],
  ['plugins that are a string', (c) => void (c.plugins = 'x'), /plugins must be an array/],
  ['a plugin entry that is a number', (c) => void (c.plugins = [3]), /plugins\[0\]/],
  ['lossWeights "first"', (c) => void (c.training.lossWeights = 'first'), /training.lossWeights must be one of "uniform", "last", got "first"/],
  ['nonFinite "ignore"', (c) => void (c.training.nonFinite = 'ignore'), /training.nonFinite must be one of "skip", "stop"/],
  ['gradClipNorm 0', (c) => void (c.training.gradClipNorm = 0), /training.gradClipNorm must be a number or null > 0, got 0/],
  ['a learning rate of 0', (c) => void (c.training.learningRate = 0), /training.learningRate must be a number > 0, got 0/],
  ['a negative tuning learning rate', (c) => void (c.evaluation.tuning.learningRates = [0.1, -1]), /evaluation.tuning.learningRates\[1\] must be a number > 0, got -1/],
  ['tuning learning rates that are a string', (c) => void (c.evaluation.tuning.learningRates = '0.1'), /evaluation.tuning.learningRates must be an array/],
  ['negative workers', (c) => void (c.training.workers = -1), /training.workers must be an integer ≥ 0, got -1/],
  ['unroll larger than steps', (c) => void (c.training.unroll = 10), /training.unroll \(10\) must not exceed training.steps \(6\)/],
  ['an unroll that does not divide steps', (c) => void (c.training.unroll = 4), /training.unroll \(4\) must divide training.steps \(6\).*try 3/],
  ['workers with second derivatives', (c) => void Object.assign(c.training, { workers: 2, secondDerivatives: true }), /training.workers \(2\) needs first-order meta-gradients/],
  // The sizes of the original report, on the wasm backend (its 4 GiB heap), with the default dims 10 and hidden 20.
  ['quadratic dims 1e8', (c) => void Object.assign(c, { backend: 'wasm', optimizee: { type: 'quadratic', options: { dims: 1e8 } } }), /would need at least .*PiB of memory.*more than/],
  ['quadratic batch 1e7', (c) => void Object.assign(c, { backend: 'wasm', optimizee: { type: 'quadratic', options: { batch: 1e7 } } }), /would need at least .* of memory.*more than/],
  ['quadratic batch 3e6', (c) => void Object.assign(c, { backend: 'wasm', optimizee: { type: 'quadratic', options: { batch: 3e6 } } }), /would need at least .* of memory.*more than/],
  ['lstm hidden 1e6', (c) => void Object.assign(c, { backend: 'wasm', metaOptimizer: { type: 'lstm', options: { hidden: 1e6 } } }), /would need at least .*TiB of memory/],
  ['rnnprop hidden 1e5', (c) => void (c.metaOptimizer = { type: 'rnnprop', options: { hidden: 1e5 } }), /meta-training .*rnnprop.* would need at least/],
  ['normalized-history hidden 1e8', (c) => void (c.metaOptimizer = { type: 'normalized-history', options: { hidden: 1e8 } }), /would need at least/],
  ['multiscale-adam mlp hidden 1e8', (c) => void (c.metaOptimizer = { type: 'multiscale-adam', options: { combiner: 'mlp', hidden: 1e8 } }), /would need at least/],
  ['an MNIST MLP with a hidden layer of 1e6 units and batch 1e5', (c) => void (c.optimizee = { type: 'mnist-mlp', options: { hidden: [1e6], batchSize: 1e5 } }), /would need at least/],
  ['a long unroll of a large quadratic', (c) => void Object.assign(c, { optimizee: { type: 'quadratic', options: { dims: 1000, batch: 100 } }, training: { ...c.training, steps: 2000, unroll: 2000 } }), /unroll 2000.*would need|would need at least .* \(unroll 2000\)/],
  ['an empty file', '', /invalid JSON/],
  ['a syntax error on line 3', '{\n  "optimizee": {\n    "type": "quadratic",,\n  }\n}', /exp\.json:3: invalid JSON/],
  ['a JSON array', '[1, 2]', /an experiment config must be a JSON object/],
  ['a JSON string', '"quadratic"', /an experiment config must be a JSON object/],
  ['JSON null', 'null', /an experiment config must be a JSON object/],
  ['an array nested 200,000 deep', `{"name": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`, /nested 200001 levels deep, more than the 100/],
  ['an object nested 5,000 deep', `{"optimizee": ${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`, /nested 5001 levels deep/],
  ['bytes that are not text', '\u0000\u0001\u0002', /invalid JSON/],
);

function configRows(): Fault[] {
  const rows: Fault[] = [];
  for (const [name, edit, message] of configFaults) {
    const setup = (dir: string) => {
      const file = path.join(dir, 'exp.json');
      if (typeof edit === 'string') fs.writeFileSync(file, edit);
      // Oversized problems are measured against the wasm backend's heap (on cpu the machine's RAM is the limit).
      else editJson(file, (c) => (edit(c), /would need/.test(message.source) && (c.backend = 'wasm'), c));
    };
    rows.push({ name: `validate: ${name}`, setup, argv: ['validate', 'exp.json'], code: 1, message });
    rows.push({ name: `train: ${name}`, setup, argv: ['train', 'exp.json', '--out', 'out'], code: 1, message, absent: ['out'] });
  }
  // eval refuses early too (a sample: its own pre-flight and the config's shape).
  for (const [name, edit, message] of configFaults.filter(([n]) => /dims 1e8|batch 1e7|an array nested|unknown optimizee type/.test(n))) {
    rows.push({
      name: `eval: ${name}`,
      setup: (dir) => (typeof edit === 'string' ? fs.writeFileSync(path.join(dir, 'exp.json'), edit) : editJson(path.join(dir, 'exp.json'), edit as Edit)),
      argv: ['eval', 'exp.json', '--out', 'ev'],
      code: 1,
      message,
      absent: ['ev'],
    });
  }
  rows.push({
    name: 'validate lists every problem, not just the first',
    setup: (dir) =>
      editJson(path.join(dir, 'exp.json'), (c) => {
        c.optimizee.options.dims = 0;
        c.metaOptimizer.options.hidden = -1;
        c.evaluation.baselines = [{ type: 'nope' }];
        c.training.workers = 2;
        c.training.secondDerivatives = true;
      }),
    argv: ['validate', 'exp.json'],
    code: 1,
    message: /dims must be/,
    check: (_dir, r) => {
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(4);
      expect(lines.join('\n')).toMatch(/hidden must be[\s\S]*unknown optimizer type "nope"[\s\S]*training.workers \(2\)/);
    },
  });
  // A config whose top-level shape is wrong still has its components' options checked in the same run.
  const shapeAndOptions = (dir: string) =>
    editJson(path.join(dir, 'exp.json'), (c) => {
      c.optimzee = {};
      c.training.epochs = 'many';
      c.optimizee.options.dims = 0;
      c.metaOptimizer.options.hidden = -1;
      c.evaluation.baselines = [{ type: 'sgd', options: { learningRate: 'fast' } }];
    });
  const everyLine = (_dir: string, r: CliRun) => {
    const lines = r.stderr.trim().split('\n');
    expect(lines).toEqual([
      'exp.json: unknown field "optimzee" (known: $schema, name, description, plugins, backend, seed, optimizee, metaOptimizer, training, evaluation)',
      'exp.json: training.epochs must be an integer ≥ 1, got "many"',
      'exp.json: optimizee "quadratic": dims must be an integer ≥ 1, got 0',
      'exp.json: metaOptimizer (meta-optimizer "lstm"): hidden must be an integer ≥ 1, got -1',
      'exp.json: evaluation.baselines[0] (optimizer "sgd"): learningRate must be a number > 0, got "fast"',
    ]);
  };
  rows.push(
    { name: 'validate: a wrong top-level shape and bad component options, all listed', setup: shapeAndOptions, argv: ['validate', 'exp.json'], code: 1, message: /unknown field "optimzee"/, check: everyLine },
    { name: 'train: a wrong top-level shape and bad component options, all listed', setup: shapeAndOptions, argv: ['train', 'exp.json', '--out', 'out'], code: 1, message: /unknown field "optimzee"/, check: everyLine, absent: ['out'] },
  );
  rows.push({ name: 'a config file that does not exist', argv: ['validate', 'nope.json'], code: 1, message: /^nope\.json: cannot read: no such file$/m });
  rows.push({ name: 'a config that is a directory', argv: ['validate', 'keep'], code: 1, message: /^keep: cannot read: is a directory$/m });
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Bad command lines: exit 2, commander's message, nothing written.

function commandLineRows(): Fault[] {
  const rows: Fault[] = [];
  const usage = (name: string, argv: string[], message: RegExp, absent: string[] = []): Fault => ({ name: `command line: ${name}`, argv, code: 2, message, absent });
  for (const value of ['0x10', '1e3', '-1', '0', 'abc', '', ' 5', '5.5', '+5', '99999999999999999999', '0b11', '１０']) {
    rows.push(usage(`eval --steps ${JSON.stringify(value)}`, ['eval', 'exp.json', '--out', 'ev', '--steps', value], /--steps <n>.*is invalid/, ['ev']));
  }
  for (const value of ['0x2', '2.0', 'two']) {
    rows.push(usage(`eval --tasks ${JSON.stringify(value)}`, ['eval', 'exp.json', '--out', 'ev', '--tasks', value], /--tasks <n>.*is invalid/, ['ev']));
  }
  rows.push(
    usage('train --backend webgl', ['train', 'exp.json', '--out', 'out', '--backend', 'webgl'], /--backend <backend>' argument 'webgl' is invalid\. Allowed choices are auto, wasm, cpu, tensorflow/, ['out']),
    usage('eval --backend webgl', ['eval', 'exp.json', '--out', 'ev', '--backend', 'webgl'], /argument 'webgl' is invalid/, ['ev']),
    usage('report --backend webgl', ['report', 'spec.json', '--backend', 'webgl'], /argument 'webgl' is invalid/),
    usage('an unknown command', ['trian', 'exp.json'], /unknown command 'trian'/),
    usage('an unknown option', ['train', 'exp.json', '--out', 'out', '--frce'], /unknown option '--frce'/, ['out']),
    usage('train without --out', ['train', 'exp.json'], /required option '-o, --out <dir>' not specified/),
    usage('eval without --out', ['eval', 'exp.json'], /required option '-o, --out <dir>' not specified/),
    usage('train without a config', ['train', '--out', 'out'], /missing required argument 'config'/, ['out']),
    usage('validate without a config', ['validate'], /missing required argument 'config'/),
    usage('an extra argument to list', ['list', 'extra'], /too many arguments/),
    usage('--out without its value', ['train', 'exp.json', '--out'], /option '-o, --out <dir>' argument missing/),
  );
  rows.push({ name: 'command line: --resume with --force', argv: ['train', 'exp.json', '--out', 'out', '--resume', '--force'], code: 1, message: /^--resume and --force exclude each other$/m, absent: ['out'] });
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Output locations: nothing the user wrote is deleted or overwritten, every location checked before work.

function outputRows(): Fault[] {
  const refused = /holds files l2l did not write/;
  return [
    { name: 'train --out . --force in the user\'s directory', argv: ['train', 'exp.json', '--out', '.', '--force'], code: 1, message: /--out \.: holds files l2l did not write.*exp\.json.*keep\/.*notes\.txt/ },
    { name: 'train --out . without --force', argv: ['train', 'exp.json', '--out', '.'], code: 1, message: refused },
    { name: 'train --out . --resume', argv: ['train', 'exp.json', '--out', '.', '--resume'], code: 1, message: refused },
    { name: 'train --out <a file> --force', argv: ['train', 'exp.json', '--out', 'notes.txt', '--force'], code: 1, message: /--out notes\.txt: is a file, not a directory/ },
    { name: 'train --out <a file>', argv: ['train', 'exp.json', '--out', 'notes.txt'], code: 1, message: /is a file, not a directory/ },
    { name: 'train --out <a directory of the user\'s> --force', argv: ['train', 'exp.json', '--out', 'keep', '--force'], code: 1, message: /--out keep: holds files l2l did not write.*data\.csv/ },
    {
      name: 'train --out <a run the user added notes to> --force',
      setup: (dir) => {
        copyRun(dir);
        fs.writeFileSync(path.join(dir, 'run', 'my-analysis.md'), 'mine\n');
      },
      argv: ['train', 'exp.json', '--out', 'run', '--force'],
      code: 1,
      message: /--out run: holds files l2l did not write.*my-analysis\.md/,
    },
    { name: 'train --out <a dangling symbolic link>', setup: (dir) => fs.symlinkSync(path.join(dir, 'gone'), path.join(dir, 'link')), argv: ['train', 'exp.json', '--out', 'link'], code: 1, message: /--out link: is a symbolic link to a missing target/, absent: ['gone'] },
    { name: 'train --out <a symbolic link to a file>', setup: (dir) => fs.symlinkSync(path.join(dir, 'notes.txt'), path.join(dir, 'link')), argv: ['train', 'exp.json', '--out', 'link', '--force'], code: 1, message: /is a symbolic link to a file/ },
    { name: 'train --out <below a file>', argv: ['train', 'exp.json', '--out', 'notes.txt/run'], code: 1, message: /notes\.txt is a file, not a directory/ },
    { name: 'train --out <below a dangling link>', setup: (dir) => fs.symlinkSync(path.join(dir, 'gone'), path.join(dir, 'link')), argv: ['train', 'exp.json', '--out', 'link/run'], code: 1, message: /link is a symbolic link to a missing target/, absent: ['gone'] },
    { name: 'train --out /proc/x (a directory that cannot be made)', argv: ['train', 'exp.json', '--out', '/proc/l2l-x'], code: 1, message: /--out \/proc\/l2l-x: cannot create directory/ },
    { name: 'train --out <an eval\'s directory>', setup: (dir) => writeJson(path.join(dir, 'ev', '.l2l-output'), { kind: 'eval' }), argv: ['train', 'exp.json', '--out', 'ev', '--force'], code: 1, message: /holds an l2l eval output/ },
    { name: 'eval --out <an existing file> (refused before the evaluation runs)', argv: ['eval', 'exp.json', '--out', 'notes.txt'], code: 1, message: /--out notes\.txt: is a file, not a directory/, check: (_d, r) => expect(r.stdout).not.toMatch(/results in/) },
    { name: 'eval --out <a dangling symbolic link>', setup: (dir) => fs.symlinkSync(path.join(dir, 'gone'), path.join(dir, 'link')), argv: ['eval', 'exp.json', '--out', 'link'], code: 1, message: /symbolic link to a missing target/, absent: ['gone'] },
    { name: 'eval --out <a directory holding the user\'s results.json>', setup: (dir) => writeJson(path.join(dir, 'mine', 'results.json'), { mine: true }), argv: ['eval', 'exp.json', '--out', 'mine'], code: 1, message: /--out mine: holds files l2l did not write: results\.json/ },
    { name: 'eval --out <a training run>', setup: (dir) => void copyRun(dir), argv: ['eval', 'exp.json', '--out', 'run'], code: 1, message: /holds files l2l did not write \(an l2l train output\)/ },
    { name: 'eval --out <the user\'s directory>', argv: ['eval', 'exp.json', '--out', '.'], code: 1, message: refused },
    { name: 'eval --out /proc/x', argv: ['eval', 'exp.json', '--out', '/proc/l2l-x'], code: 1, message: /cannot create directory \/proc\/l2l-x/ },
    {
      name: 'report --out <a file>',
      setup: (dir) => writeJson(path.join(dir, 'spec.json'), { title: 'T', checkpoint: { dir: 'run', config: 'exp.json' }, results: 'results', evaluations: [{ name: 'q', config: 'exp.json' }] }),
      argv: ['report', 'spec.json', '--out', 'notes.txt'],
      code: 1,
      message: /--out notes\.txt: is a file, not a directory/,
      absent: ['results'],
    },
    {
      name: 'report with "results" naming a file',
      setup: (dir) => writeJson(path.join(dir, 'spec.json'), { title: 'T', checkpoint: { dir: 'run', config: 'exp.json' }, results: 'notes.txt', evaluations: [{ name: 'q', config: 'exp.json' }] }),
      argv: ['report', 'spec.json', '--out', 'page'],
      code: 1,
      message: /"results" notes\.txt: is a file, not a directory/,
    },
    // What is allowed: a run l2l wrote is replaced by --force, an eval's directory rewritten.
    {
      name: 'train --out <a run l2l wrote> --force starts afresh',
      setup: (dir) => void copyRun(dir),
      argv: ['train', 'exp.json', '--out', 'run', '--force'],
      code: 0,
      message: /done: 2 epochs/,
      mayChange: /^run\//,
      check: (dir) => expect(fs.readFileSync(path.join(dir, 'run', 'log.csv'), 'utf8').trim().split('\n')).toHaveLength(3),
    },
    {
      name: 'train --out <a run l2l wrote> without --force or --resume',
      setup: (dir) => void copyRun(dir),
      argv: ['train', 'exp.json', '--out', 'run'],
      code: 1,
      message: /--out run already holds a training run; pass --resume to continue it, --force to discard it/,
    },
    {
      name: 'train --force removes an eval l2l wrote inside the run, nothing else',
      setup: (dir) => {
        copyRun(dir);
        writeJson(path.join(dir, 'run', 'eval', '.l2l-output'), { kind: 'eval' });
        writeJson(path.join(dir, 'run', 'eval', 'results.json'), {});
      },
      argv: ['train', 'exp.json', '--out', 'run', '--force'],
      code: 0,
      message: /done: 2 epochs/,
      mayChange: /^run\//,
      check: (dir) => expect(fs.existsSync(path.join(dir, 'run', 'eval'))).toBe(false),
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Locks: one training run per directory. Another process's lock refuses a second run (nothing touched); a lock
// left by a process that is gone (kill -9) or gone stale is taken over. Real concurrent processes: faults-process.spec.ts.

/** A lock as a training run leaves it in `run/`: proper-lockfile's directory and the owner l2l records beside it. */
function leaveLock(run: string, pid: number | null, ageSeconds = 0): void {
  fs.mkdirSync(path.join(run, '.l2l-lock'));
  if (pid !== null) writeJson(path.join(run, '.l2l-lock.json'), { pid, host: os.hostname(), since: new Date().toISOString() });
  const t = new Date(Date.now() - ageSeconds * 1000);
  fs.utimesSync(path.join(run, '.l2l-lock'), t, t);
}

/** The id of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

function lockRows(): Fault[] {
  const busy = /^--out run: in use by another l2l run \(pid \d+ on \S+ since \S+\); wait for it to end or choose another --out/m;
  const noLockLeft = (dir: string) => expect(fs.readdirSync(path.join(dir, 'run')).filter((e) => e.startsWith('.l2l-lock'))).toEqual([]);
  // This test process stands for a live l2l run holding the lock.
  const held = (dir: string) => leaveLock(copyRun(dir), process.pid);
  return [
    { name: 'lock: train --resume on a run another live process holds', setup: held, argv: ['train', 'exp3.json', '--out', 'run', '--resume'], code: 1, message: busy },
    { name: 'lock: train --force on a run another live process holds (nothing removed)', setup: held, argv: ['train', 'exp.json', '--out', 'run', '--force'], code: 1, message: busy },
    { name: 'lock: train on a fresh lock whose owner is not recorded', setup: (dir) => leaveLock(copyRun(dir), null), argv: ['train', 'exp3.json', '--out', 'run', '--resume'], code: 1, message: /in use by another l2l run \(owner unknown\)/ },
    {
      name: 'lock: left by a process that is gone (kill -9) is taken over by --resume',
      setup: (dir) => leaveLock(copyRun(dir), deadPid()),
      argv: ['train', 'exp3.json', '--out', 'run', '--resume'],
      code: 0,
      message: /done: 3 epochs/,
      mayChange: /^run\//,
      check: noLockLeft,
    },
    {
      name: 'lock: left by a process that is gone is taken over by --force',
      setup: (dir) => leaveLock(copyRun(dir), deadPid()),
      argv: ['train', 'exp.json', '--out', 'run', '--force'],
      code: 0,
      message: /done: 2 epochs/,
      mayChange: /^run\//,
      check: noLockLeft,
    },
    {
      name: 'lock: without an owner, untouched for an hour (stale) is taken over',
      setup: (dir) => leaveLock(copyRun(dir), null, 3600),
      argv: ['train', 'exp3.json', '--out', 'run', '--resume'],
      code: 0,
      message: /done: 3 epochs/,
      mayChange: /^run\//,
      check: noLockLeft,
    },
    { name: 'lock: a run ends without leaving its lock', argv: ['train', 'exp.json', '--out', 'fresh'], code: 0, message: /done: 2 epochs/, check: (dir) => expect(fs.readdirSync(path.join(dir, 'fresh')).sort()).toEqual(['.l2l-output', 'best', 'experiment.json', 'latest', 'log.csv']) },
    {
      name: 'lock: eval into a directory another live eval holds (nothing written)',
      setup: (dir) => {
        fs.mkdirSync(path.join(dir, 'ev'));
        writeJson(path.join(dir, 'ev', '.l2l-output'), { kind: 'eval' });
        leaveLock(path.join(dir, 'ev'), process.pid);
      },
      argv: ['eval', 'exp.json', '--out', 'ev'],
      code: 1,
      message: /^--out ev: in use by another l2l run \(pid \d+ on \S+ since \S+\)/m,
    },
    {
      name: 'report --train into a checkpoint directory that holds the user\'s files: refused before any training',
      setup: (dir) => {
        writeJson(path.join(dir, 'spec.json'), { title: 'T', checkpoint: { dir: 'mine', config: 'exp.json' }, results: 'results', evaluations: [{ name: 'q', config: 'exp.json' }] });
        fs.mkdirSync(path.join(dir, 'mine'));
        fs.writeFileSync(path.join(dir, 'mine', 'notes.txt'), 'mine');
      },
      argv: ['report', 'spec.json', '--train', '--out', 'page'],
      code: 1,
      message: /spec\.json: checkpoint\.dir mine: holds files l2l did not write: notes\.txt/,
      mayChange: /^(page|results)(\/|$)/,
    },
    {
      name: 'report --train into a checkpoint directory a live training run holds',
      setup: (dir) => {
        writeJson(path.join(dir, 'spec.json'), { title: 'T', checkpoint: { dir: 'busy', config: 'exp.json' }, results: 'results', evaluations: [{ name: 'q', config: 'exp.json' }] });
        fs.mkdirSync(path.join(dir, 'busy'));
        writeJson(path.join(dir, 'busy', '.l2l-output'), { kind: 'train' });
        leaveLock(path.join(dir, 'busy'), process.pid);
      },
      argv: ['report', 'spec.json', '--train', '--out', 'page'],
      code: 1,
      message: /spec\.json: checkpoint\.dir busy: in use by another l2l run/,
      mayChange: /^(page|results)(\/|$)/,
    },
    {
      name: 'lock: a run that fails ends without leaving its lock',
      setup: (dir) => editJson(path.join(copyRun(dir), 'latest', 'trainer.json'), (t) => void (t.epoch = 'abc')),
      argv: ['train', 'exp3.json', '--out', 'run', '--resume'],
      code: 1,
      message: /trainer\.json: epoch must be an integer/,
      check: noLockLeft,
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints: checked, not trusted. Each corruption is refused by eval (--optimizer) and by train --resume.

const checkpointFaults: Array<[string, (run: string) => void, RegExp]> = [
  ['trainer.json {"epoch":"abc"}', (r) => writeJson(path.join(r, 'latest', 'trainer.json'), { epoch: 'abc' }), /latest\/trainer\.json: epoch must be an integer ≥ 0, got "abc"/],
  ['trainer.json with a negative epoch', (r) => editJson(path.join(r, 'latest', 'trainer.json'), (t) => void (t.epoch = -1)), /trainer\.json: epoch must be an integer ≥ 0, got -1/],
  ['trainer.json without adamStep', (r) => editJson(path.join(r, 'latest', 'trainer.json'), (t) => void delete t.adamStep), /trainer\.json: missing field "adamStep"/],
  ['trainer.json that is not JSON', (r) => fs.writeFileSync(path.join(r, 'latest', 'trainer.json'), '{epoch: 2'), /latest\/trainer\.json: cannot read/],
  ['trainer.json with a string bestValidation', (r) => editJson(path.join(r, 'latest', 'trainer.json'), (t) => void (t.bestValidation = 'low')), /bestValidation must be a number or null/],
  ['weights.json that is not JSON', (r) => fs.writeFileSync(path.join(r, 'latest', 'weights.json'), 'garbage'), /latest\/weights\.json: cannot read weights/],
  ['weights.json of another format', (r) => editJson(path.join(r, 'latest', 'weights.json'), (m) => void (m.format = 'tfjs')), /latest\/weights\.json: not an l2l weights manifest/],
  ['a weight\'s shape edited', (r) => editJson(path.join(r, 'latest', 'weights.json'), (m) => void (m.weights[0].shape = [m.weights[0].shape.reduce((a: number, b: number) => a * b, 1)])), /latest\/weights\.json: does not fit meta-optimizer "lstm": .*shape/],
  ['a weight\'s name edited', (r) => editJson(path.join(r, 'latest', 'weights.json'), (m) => void (m.weights[0].name = 'renamed')), /latest\/weights\.json: does not fit meta-optimizer "lstm": .*(missing|unknown) weight/],
  ['a weight\'s dtype edited to int32', (r) => editJson(path.join(r, 'latest', 'weights.json'), (m) => void (m.weights[0].dtype = 'int32')), /latest\/weights\.json: does not fit meta-optimizer "lstm": .*dtype int32/],
  ['a weight\'s dtype edited to float16', (r) => editJson(path.join(r, 'latest', 'weights.json'), (m) => void (m.weights[0].dtype = 'float16')), /latest\/weights\.json: weights\[0\]\.dtype must be one of "float32", "int32"/],
  ['a negative dimension', (r) => editJson(path.join(r, 'latest', 'weights.json'), (m) => void (m.weights[0].shape = [-4])), /weights\[0\]\.shape\[0\] must be an integer ≥ 0/],
  ['a weight listed twice', (r) => editJson(path.join(r, 'latest', 'weights.json'), (m) => void m.weights.push(m.weights[0])), /weight ".*" is listed twice/],
  ['weights.bin truncated', (r) => fs.truncateSync(path.join(r, 'latest', 'weights.bin'), 8), /latest\/weights\.bin: expected \d+ bytes .* found 8/],
  ['weights.bin with bytes appended', (r) => fs.appendFileSync(path.join(r, 'latest', 'weights.bin'), Buffer.alloc(4)), /weights\.bin: expected \d+ bytes/],
  ['weights.bin missing', (r) => fs.rmSync(path.join(r, 'latest', 'weights.bin')), /latest\/weights\.json: cannot read weights/],
  ['a NaN in weights.bin', (r) => setFloat(path.join(r, 'latest', 'weights.bin'), 5, NaN), /latest\/weights\.bin: weight ".*" holds a non-finite value \(NaN/],
  ['an Infinity in weights.bin', (r) => setFloat(path.join(r, 'latest', 'weights.bin'), 0, Infinity), /holds a non-finite value \(Infinity/],
  ['meta-optimizer.json that is not JSON', (r) => fs.writeFileSync(path.join(r, 'latest', 'meta-optimizer.json'), '{'), /latest\/meta-optimizer\.json: cannot read/],
  ['meta-optimizer.json without a type', (r) => writeJson(path.join(r, 'latest', 'meta-optimizer.json'), { options: {} }), /latest\/meta-optimizer\.json: missing field "type"/],
  ['meta-optimizer.json of an unknown type', (r) => editJson(path.join(r, 'latest', 'meta-optimizer.json'), (m) => void (m.type = 'lstn')), /meta-optimizer\.json: .*unknown meta-optimizer type "lstn"|meta-optimizer\.json: type "lstn" differs/],
  ['meta-optimizer.json with hidden changed', (r) => editJson(path.join(r, 'latest', 'meta-optimizer.json'), (m) => void (m.options.hidden = 5)), /latest\/weights\.json: does not fit meta-optimizer "lstm": .*shape|latest\/meta-optimizer\.json: differs from the experiment's metaOptimizer in options\.hidden/],
  ['meta-optimizer.json with a bad option', (r) => editJson(path.join(r, 'latest', 'meta-optimizer.json'), (m) => void (m.options.hidden = 'many')), /meta-optimizer\.json.*hidden must be an integer ≥ 1, got "many"|latest\/meta-optimizer\.json: differs from the experiment's metaOptimizer in options\.hidden/],
];

const resumeOnlyFaults: Array<[string, (run: string) => void, RegExp]> = [
  ['adam.json naming a weight that does not exist', (r) => editJson(path.join(r, 'latest', 'adam.json'), (m) => void (m.weights[0].name = 'nothing/m')), /latest\/adam\.json: tensor "nothing\/m" matches no weight/],
  ['a NaN in adam.bin', (r) => setFloat(path.join(r, 'latest', 'adam.bin'), 0, NaN), /latest\/adam\.bin: weight ".*" holds a non-finite value/],
  ['experiment.json that is not JSON', (r) => fs.writeFileSync(path.join(r, 'experiment.json'), '{"x":'), /run\/experiment\.json(:\d+)?: invalid JSON/],
  ['experiment.json of another experiment', (r) => editJson(path.join(r, 'experiment.json'), (e) => void (e.optimizee.options.dims = 4)), /experiment\.json: the config differs from the checkpoint's experiment in optimizee\.options\.dims/],
  ['experiment.json with an invalid field', (r) => editJson(path.join(r, 'experiment.json'), (e) => void (e.training.steps = 'many')), /experiment\.json: training\.steps must be an integer ≥ 1/],
  ['a snapshot of another meta-optimizer type', (r) => editJson(path.join(r, 'latest', 'meta-optimizer.json'), (m) => void (m.type = 'rnnprop')), /latest\/meta-optimizer\.json: type "rnnprop" differs from the experiment's metaOptimizer "lstm"/],
  ['trainer.json deleted', (r) => fs.rmSync(path.join(r, 'latest', 'trainer.json')), /latest: no trainer state to resume from/],
];

function checkpointRows(): Fault[] {
  const rows: Fault[] = [];
  for (const [name, corrupt, message] of checkpointFaults) {
    const setup = (dir: string) => corrupt(copyRun(dir));
    if (!/trainer\.json/.test(name)) {
      // eval reads best/ first: the corruption is made there too.
      const setupEval = (dir: string) => {
        const run = copyRun(dir);
        fs.rmSync(path.join(run, 'best'), { recursive: true });
        corrupt(run);
      };
      rows.push({ name: `eval --optimizer: ${name}`, setup: setupEval, argv: ['eval', 'exp.json', '--optimizer', 'run', '--out', 'ev'], code: 1, message });
    }
    rows.push({ name: `train --resume: ${name}`, setup, argv: ['train', 'exp3.json', '--out', 'run', '--resume'], code: 1, message });
  }
  for (const [name, corrupt, message] of resumeOnlyFaults) {
    rows.push({ name: `train --resume: ${name}`, setup: (dir) => corrupt(copyRun(dir)), argv: ['train', 'exp3.json', '--out', 'run', '--resume'], code: 1, message });
  }
  rows.push(
    { name: 'eval --optimizer <no checkpoint>', argv: ['eval', 'exp.json', '--optimizer', 'keep', '--out', 'ev'], code: 1, message: /keep: no checkpoint here/ },
    {
      name: 'train --resume <an empty directory> starts from epoch 1',
      setup: (dir) => fs.mkdirSync(path.join(dir, 'empty')),
      argv: ['train', 'exp.json', '--out', 'empty', '--resume'],
      code: 0,
      message: /nothing to resume in empty yet: starting from epoch 1/,
    },
    {
      name: 'a run killed before its first snapshot is resumed (it starts over)',
      setup: (dir) => {
        const run = copyRun(dir);
        for (const d of ['latest', 'best', 'log.csv']) fs.rmSync(path.join(run, d), { recursive: true });
      },
      argv: ['train', 'exp.json', '--out', 'run', '--resume'],
      code: 0,
      message: /epochs 1\.\.2/,
      mayChange: /^run\//,
    },
    {
      name: 'a run killed before it wrote anything but its marker is resumed (it starts over)',
      setup: (dir) => writeJson(path.join(dir, 'run', '.l2l-output'), { kind: 'train' }),
      argv: ['train', 'exp.json', '--out', 'run', '--resume'],
      code: 0,
      message: /epochs 1\.\.2/,
      mayChange: /^run\//,
    },
    {
      name: 'a run killed before its first snapshot is restarted without --force',
      setup: (dir) => {
        const run = copyRun(dir);
        for (const d of ['latest', 'best', 'log.csv']) fs.rmSync(path.join(run, d), { recursive: true });
        fs.mkdirSync(path.join(run, `.latest.tmp-${2 ** 22 + 17}`));
      },
      argv: ['train', 'exp.json', '--out', 'run'],
      code: 0,
      message: /done: 2 epochs/,
      mayChange: /^run\//,
    },
    {
      name: 'stale temporaries of a killed process are removed on --resume',
      setup: (dir) => {
        const run = copyRun(dir);
        fs.mkdirSync(path.join(run, `.latest.tmp-${2 ** 22 + 17}`));
        fs.writeFileSync(path.join(run, `log.csv.tmp-${2 ** 22 + 17}`), 'half');
      },
      argv: ['train', 'exp3.json', '--out', 'run', '--resume'],
      code: 0,
      message: /epochs 3\.\.3/,
      mayChange: /^run\//,
      check: (dir) => expect(fs.readdirSync(path.join(dir, 'run')).filter((e) => e.includes('.tmp-'))).toEqual([]),
    },
    {
      name: 'a snapshot interrupted between renames (latest/ gone, .latest.old kept) resumes from .latest.old',
      setup: (dir) => {
        const run = copyRun(dir);
        fs.renameSync(path.join(run, 'latest'), path.join(run, '.latest.old'));
      },
      argv: ['train', 'exp3.json', '--out', 'run', '--resume'],
      code: 0,
      message: /epochs 3\.\.3/,
      mayChange: /^run\//,
    },
  );
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Plugins: code, loaded only from the project's packages or its own paths, errors naming the plugin.

const handMade = (body: string, extra = '') => `module.exports = { default: { [Symbol.for('l2l.plugin')]: true, name: 'fake', ${extra} modules() { ${body} } } };\n`;

function pluginProject(dir: string): void {
  writeJson(path.join(dir, 'package.json'), { name: 'my-project', private: true, dependencies: { 'exports-plugin': '1.0.0' } });
  const pkg = (name: string, files: Record<string, string>, manifest: object = {}) => {
    const d = path.join(dir, 'node_modules', name);
    writeJson(path.join(d, 'package.json'), { name, version: '1.0.0', main: 'index.js', ...manifest });
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(d, f), text);
  };
  const component = (create: string) =>
    handMade(`const { componentsModule } = require('@l2l/core');
      return [componentsModule({ source: 'boom-plugin', components: [{ kind: 'optimizee', type: 'boom', description: 'Explodes',
        schema: { type: 'object', additionalProperties: false, properties: {} }, create() { ${create} } }] })];`);
  pkg('exports-plugin', { 'index.js': handMade('return [];') }, { exports: { '.': './index.js' }, l2l: {} });
  // A task family of `size` coordinates that gives no size estimate: the pre-flight measures it once built.
  const tfPath = JSON.stringify(require.resolve('@tensorflow/tfjs-core', { paths: [path.join(__dirname, '..', '..', 'core')] }));
  pkg('unsized-plugin', {
    'index.js': handMade(`const { componentsModule } = require('@l2l/core'); const tf = require(${tfPath});
      const family = (size) => ({ type: 'wide', sample: (seed, split) => ({ family: 'wide', split, seed }),
        build: (config) => ({ config, initParams: () => ({ x: tf.zeros([size]) }), batch: () => ({}), loss: (p) => tf.tidy(() => tf.sum(tf.square(p.x))), dispose() {} }) });
      return [componentsModule({ source: 'unsized-plugin', components: [{ kind: 'optimizee', type: 'wide', description: 'Wide',
        schema: { type: 'object', additionalProperties: false, properties: { size: { type: 'integer', minimum: 1, default: 3, description: 'Coordinates' } } },
        create: (o) => family(o.size) }] })];`),
  });
  pkg('boom-plugin', { 'index.js': component("throw new Error('kaboom in create');") });
  pkg('escaping-plugin', { 'index.js': handMade('return [];') }, { l2l: { plugin: '../../evil/index.js' } });
  pkg('not-a-plugin', { 'index.js': 'module.exports = { hello: 1 };\n' });
  fs.mkdirSync(path.join(dir, 'plugins', 'local'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'plugins', 'local', 'index.js'), handMade('return [];'));
  // Code that must never run: it leaves a mark if it does.
  fs.mkdirSync(path.join(dir, 'evil'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'evil', 'index.js'), `require('fs').writeFileSync(require('path').join(__dirname, '..', 'EVIL-RAN'), 'x');\n${handMade('return [];')}`);
}

function pluginRows(): Fault[] {
  const withPlugins = (plugins: unknown[], extra: Record<string, unknown> = {}) => (dir: string) => {
    pluginProject(dir);
    editJson(path.join(dir, 'exp.json'), (c) => Object.assign(c, { plugins }, extra));
  };
  const inSub = (plugins: unknown[]) => (dir: string) => {
    pluginProject(dir);
    writeJson(path.join(dir, 'configs', 'exp.json'), { ...toyExperiment(), plugins });
  };
  const noEvil = (dir: string) => expect(fs.existsSync(path.join(dir, 'EVIL-RAN'))).toBe(false);
  const outside = path.join(os.tmpdir(), 'l2l-fault-outside-plugin');
  return [
    { name: 'plugin: a relative path that leaves the project', setup: (dir) => { writeJson(path.join(dir, 'sub', 'package.json'), { name: 'sub' }); pluginProject(dir); writeJson(path.join(dir, 'sub', 'exp.json'), { ...toyExperiment(), plugins: ['../evil'] }); }, argv: ['validate', 'sub/exp.json'], code: 1, message: /plugin "\.\.\/evil": the path leaves the project .*refused unless --allow-plugin-paths/, check: noEvil },
    { name: 'plugin: ../../../tmp/evil', setup: withPlugins(['../../../../../../../../tmp/l2l-evil']), argv: ['validate', 'exp.json'], code: 1, message: /the path leaves the project/, check: noEvil },
    { name: 'plugin: an absolute path', setup: withPlugins([outside]), argv: ['validate', 'exp.json'], code: 1, message: /absolute plugin paths are refused \(plugins are code\)/ },
    { name: 'plugin: an absolute path, under train', setup: withPlugins([outside]), argv: ['train', 'exp.json', '--out', 'out'], code: 1, message: /absolute plugin paths are refused/, absent: ['out'] },
    { name: 'plugin: a relative path inside the project loads', setup: withPlugins(['./plugins/local']), argv: ['validate', 'exp.json'], code: 0, message: /exp\.json: ok/ },
    { name: 'plugin: a path inside the project from a config in a subdirectory', setup: inSub(['../plugins/local']), argv: ['validate', 'configs/exp.json'], code: 0, message: /ok/ },
    { name: 'plugin: --no-plugins runs no plugin code', setup: withPlugins(['./evil']), argv: ['validate', 'exp.json', '--no-plugins'], code: 0, message: /exp\.json: ok \(plugins not loaded: \.\/evil; not checked: nothing\)/, check: noEvil },
    { name: 'plugin: --no-plugins lists the components it could not check', setup: withPlugins(['boom-plugin'], { optimizee: { type: 'boom' } }), argv: ['validate', 'exp.json', '--no-plugins'], code: 0, message: /not checked: optimizee "boom"/ },
    { name: 'plugin: whose exports lack ./package.json is found', setup: withPlugins(['exports-plugin']), argv: ['validate', 'exp.json'], code: 0, message: /exp\.json: ok/ },
    { name: 'plugin: an entry pointing outside its package', setup: withPlugins(['escaping-plugin']), argv: ['validate', 'exp.json'], code: 1, message: /plugin "escaping-plugin": its package.json points at \.\.\/\.\.\/evil\/index\.js, outside the package/, check: noEvil },
    { name: 'plugin: not installed', setup: withPlugins(['l2l-plugin-nope']), argv: ['validate', 'exp.json'], code: 1, message: /plugin "l2l-plugin-nope" is not installed/ },
    { name: 'plugin: a name that is neither a package nor a path', setup: withPlugins(['Evil Plugin!']), argv: ['validate', 'exp.json'], code: 1, message: /plugin "Evil Plugin!" is neither a package name nor a relative path/ },
    { name: 'plugin: a package that exports no plugin', setup: withPlugins(['not-a-plugin']), argv: ['validate', 'exp.json'], code: 1, message: /plugin "not-a-plugin": .* does not export an l2l plugin/ },
    { name: 'plugin: options it declares no schema for', setup: withPlugins([['exports-plugin', { level: 3 }]]), argv: ['validate', 'exp.json'], code: 1, message: /plugin "exports-plugin" takes no options \(it declares no optionsSchema\), got \{"level":3\}/ },
    { name: 'plugin: a component that throws in create()', setup: withPlugins(['boom-plugin'], { optimizee: { type: 'boom' } }), argv: ['train', 'exp.json', '--out', 'out'], code: 1, message: /plugin "boom-plugin": optimizee \(optimizee "boom"\) failed to build: kaboom in create/ },
    {
      name: 'plugin: a wrong top-level shape still checks the plugin component\'s options',
      setup: withPlugins(['boom-plugin'], { optimizee: { type: 'boom', options: { power: 9 } }, seed: -1 }),
      argv: ['validate', 'exp.json'],
      code: 1,
      message: /seed must be an integer ≥ 0, got -1\nexp\.json: optimizee "boom": unknown field "power"/,
    },
    {
      name: 'plugin: a wrong top-level shape with --no-plugins leaves the plugin component unchecked',
      setup: withPlugins(['./evil'], { optimizee: { type: 'boom', options: { power: 9 } }, metaOptimizer: { type: 'lstm', options: { hidden: 0 } }, seed: -1 }),
      argv: ['validate', 'exp.json', '--no-plugins'],
      code: 1,
      message: /seed must be an integer ≥ 0, got -1\nexp\.json: metaOptimizer \(meta-optimizer "lstm"\): hidden must be/,
      check: (dir, r) => {
        noEvil(dir);
        expect(r.stderr).not.toMatch(/boom/);
      },
    },
    {
      name: 'plugin: a wrong top-level shape and a plugin that cannot load: both listed, built-ins checked',
      setup: withPlugins(['l2l-plugin-nope'], { metaOptimizer: { type: 'lstm', options: { hidden: 0 } }, seed: -1 }),
      argv: ['validate', 'exp.json'],
      code: 1,
      message: /seed must be[\s\S]*plugin "l2l-plugin-nope" is not installed[\s\S]*hidden must be an integer ≥ 1, got 0/,
    },
    {
      name: 'plugin: a component without a size estimate is named by validate\'s pre-flight',
      setup: withPlugins(['unsized-plugin'], { optimizee: { type: 'wide' } }),
      argv: ['validate', 'exp.json'],
      code: 0,
      message: /^exp\.json: ok$/m,
      check: (_dir, r) => expect(r.stderr).toMatch(/^warning: exp\.json: optimizee "wide" \(unsized-plugin\) gives no size estimate: the pre-flight cannot check its memory from the config; it is measured once built/),
    },
    {
      name: 'plugin: a component without a size estimate trains, with the warning',
      setup: withPlugins(['unsized-plugin'], { optimizee: { type: 'wide' } }),
      argv: ['train', 'exp.json', '--out', 'out'],
      code: 0,
      message: /done: 2 epochs/,
      check: (_dir, r) => expect(r.stderr).toMatch(/^warning: exp\.json: optimizee "wide" \(unsized-plugin\) gives no size estimate/),
    },
    {
      // 10⁶ coordinates (4 MB of parameters) through the LSTM's tape over an unroll of 600 steps: far more than the wasm heap.
      name: 'plugin: an oversized component without a size estimate is measured and refused before the first step',
      setup: withPlugins(['unsized-plugin'], { backend: 'wasm', optimizee: { type: 'wide', options: { size: 1e6 } }, training: { epochs: 1, episodesPerEpoch: 1, steps: 600, unroll: 600, validationTasks: 1 } }),
      argv: ['train', 'exp.json', '--out', 'out'],
      code: 1,
      message: /^exp\.json: meta-training wide \{"size":1000000\} with lstm .* would need at least .* of memory \(unroll 600\) \(sizes measured on the built components\), more than the wasm backend's 4\.00 GiB heap/m,
      check: (dir, r) => {
        expect(r.stdout).not.toMatch(/epoch 1/);
        expect(fs.readdirSync(path.join(dir, 'out'))).toEqual(['.l2l-output']);
      },
    },
    { name: 'plugin: l2l list shows the project\'s installed plugins without --config', setup: (dir) => pluginProject(dir), argv: ['list'], code: 0, message: /Plugins: exports-plugin/ },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Data: corrupt IDX files behind an mnist-mlp optimizee, refused with the file named, bombs stopped early.

function idxRows(): Fault[] {
  const images = (n: number) => encodeIdx({ dtype: 'uint8', dims: [n, 4, 4], data: new Uint8Array(n * 16).fill(9) });
  const labels = (n: number) => encodeIdx({ dtype: 'uint8', dims: [n], data: new Uint8Array(n).map((_, i) => i % 10) });
  const dataset = (dir: string, replace: Record<string, Buffer> = {}) => {
    const files: Record<string, Buffer> = {
      'train-images-idx3-ubyte': images(20),
      'train-labels-idx1-ubyte': labels(20),
      't10k-images-idx3-ubyte': images(10),
      't10k-labels-idx1-ubyte': labels(10),
      ...replace,
    };
    for (const [f, bytes] of Object.entries(files)) {
      fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'data', f), bytes);
    }
    editJson(path.join(dir, 'exp.json'), (c) => {
      c.optimizee = { type: 'mnist-mlp', options: { dataset: 'idx', path: 'data', hidden: [2], batchSize: 4 } };
      c.evaluation = { steps: 1, tasks: 1, baselines: [{ type: 'sgd' }], tuning: { learningRates: [] } };
    });
  };
  const bombHeader = Buffer.from([0, 0, 8, 3, 0, 0, 0, 20, 0, 0, 0, 4, 0, 0, 0, 4]);
  const rows: Array<[string, Record<string, Buffer>, RegExp]> = [
    ['a gzip bomb (the header announces 320 bytes, 50 MB follow)', { 'train-images-idx3-ubyte': zlib.gzipSync(Buffer.concat([bombHeader, Buffer.alloc(50e6)])) }, /train-images-idx3-ubyte: gzip data decompresses to more than the 336 bytes its IDX header announces/],
    ['a header announcing 64 GiB', { 'train-images-idx3-ubyte': zlib.gzipSync(Buffer.from([0, 0, 8, 3, 0, 1, 0, 0, 0, 0, 0x40, 0, 0, 0, 4, 0])) }, /its IDX header announces \d+ bytes of data, more than l2l reads/],
    ['corrupt gzip data', { 'train-labels-idx1-ubyte': zlib.gzipSync(labels(20)).subarray(0, 30) }, /train-labels-idx1-ubyte: corrupt gzip data/],
    ['a wrong magic number', { 't10k-images-idx3-ubyte': Buffer.from([1, 2, 8, 1, 0, 0, 0, 0]) }, /t10k-images-idx3-ubyte: not a valid IDX file: wrong magic number/],
    ['an unknown type code', { 'train-images-idx3-ubyte': Buffer.from([0, 0, 0x42, 1, 0, 0, 0, 0]) }, /not a valid IDX file: unknown data type code 0x42/],
    ['a truncated header', { 'train-images-idx3-ubyte': Buffer.from([0, 0, 8, 3, 0, 0]) }, /not a valid IDX file: the file is truncated/],
    ['truncated data', { 'train-images-idx3-ubyte': images(20).subarray(0, 100) }, /the file is truncated \(dims \[20, 4, 4\] uint8 need 336 bytes, the file has 100\)/],
    ['trailing bytes', { 'train-labels-idx1-ubyte': Buffer.concat([labels(20), Buffer.alloc(3)]) }, /3 trailing bytes after the data/],
    ['an empty file', { 'train-labels-idx1-ubyte': Buffer.alloc(0) }, /the file is truncated \(0 bytes/],
    ['images and labels of different counts', { 'train-labels-idx1-ubyte': labels(19) }, /holds 20 images but .* holds 19 labels/],
    ['labels stored as float32', { 'train-labels-idx1-ubyte': encodeIdx({ dtype: 'float32', dims: [20], data: new Float32Array(20) }) }, /expected labels as unsigned bytes/],
  ];
  const out: Fault[] = rows.map(([name, replace, message]) => ({
    name: `data: ${name}`,
    setup: (dir: string) => dataset(dir, replace),
    argv: ['eval', 'exp.json', '--out', 'ev'],
    code: 1,
    message,
  }));
  out.push({
    name: 'data: a missing file',
    setup: (dir) => {
      dataset(dir);
      fs.rmSync(path.join(dir, 'data', 't10k-labels-idx1-ubyte'));
    },
    argv: ['eval', 'exp.json', '--out', 'ev'],
    code: 1,
    message: /t10k-labels-idx1-ubyte: no such file/,
  });
  return out;
}

const faults: Fault[] = [...configRows(), ...commandLineRows(), ...outputRows(), ...lockRows(), ...checkpointRows(), ...pluginRows(), ...idxRows()];

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-faults-'));
  const shared = path.join(root, 'shared');
  fs.mkdirSync(shared);
  writeJson(path.join(shared, 'exp.json'), toyExperiment());
  const r = await runCli(['train', 'exp.json', '--out', 'run'], shared);
  if (r.code !== 0) throw new Error(`training the toy run failed: ${r.stderr}`);
  trainedRun = path.join(shared, 'run');
}, 120_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('the fault table', () => {
  it('has at least 150 distinct faults', () => {
    expect(faults.length).toBeGreaterThanOrEqual(150);
    expect(new Set(faults.map((f) => f.name)).size).toBe(faults.length);
  });
});

let caseNumber = 0;
describe.each(faults.map((f) => [f.name, f] as const))('%s', (_name, fault) => {
  it(`exits ${fault.code}, says so in one plain message, loses nothing`, async () => {
    const dir = path.join(root, `case-${++caseNumber}`);
    fs.mkdirSync(dir);
    writeUserFiles(dir);
    writeJson(path.join(dir, 'exp.json'), toyExperiment());
    writeJson(path.join(dir, 'exp3.json'), toyExperiment({}, { epochs: 3 }));
    fault.setup?.(dir);
    const before = fileHashes(dir);
    const tensors = tf.memory().numTensors;
    const r = await runCli(fault.argv, dir, 60_000);
    const shown = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    expect({ code: r.code, shown }).toEqual({ code: fault.code, shown });
    expect(fault.code === 0 ? r.stdout : r.stderr).toMatch(fault.message);
    expect(r.stderr).not.toMatch(STACK);
    if (fault.code === 1) {
      // A user error: its lines only, each naming where (a file, flag, field or plugin).
      for (const line of r.stderr.trim().split('\n')) expect(line).toMatch(/^\S.{10,}/);
    }
    expect(lostFiles(dir, before).filter((f) => !fault.mayChange?.test(f))).toEqual([]);
    for (const p of fault.absent ?? []) expect(fs.existsSync(path.resolve(dir, p))).toBe(false);
    expect(tf.memory().numTensors).toBe(tensors);
    fault.check?.(dir, r);
  }, 90_000);
});
