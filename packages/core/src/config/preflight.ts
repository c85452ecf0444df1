import * as os from 'node:os';
import type { ComponentConfig } from '../contracts/json';
import type { ComponentEstimate, ComponentKind } from '../registry/component';
import type { ComponentRegistry } from '../registry/registry';
import { WASM_MEMORY_LIMIT } from '../engine/tape-memory';
import { ES_DEFAULTS } from '../engine/estimators';
import { BASELINE_GROUP_KIND, PER_GROUP_TYPE } from '../engine/per-group';
import type { ExperimentConfig } from './experiment';
import { ConfigError } from '../schema/validate';

/**
 * The pre-flight shared by `l2l validate`, `train` and `eval`: from the resolved options alone (nothing is built),
 * a lower bound of the memory a run needs, refused when it exceeds what the backend can hold (the wasm heap's
 * 4 GiB) or the machine's RAM. Components give their sizes through `ComponentDefinition.estimate`.
 */
export type PreflightMode = 'train' | 'eval' | 'all';

export interface PreflightOverrides {
  steps?: number;
  tasks?: number;
  /**
   * Sizes measured on the built components (pipeline/measure.ts), used for a component that gives no `estimate`
   * (a plugin's, say); a component's own estimate always wins.
   */
  measured?: { optimizee?: ComponentEstimate; metaOptimizer?: ComponentEstimate };
}

const FLOAT = 4;

function gib(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'an unbounded amount';
  const units: Array<[number, string]> = [
    [2 ** 50, 'PiB'],
    [2 ** 40, 'TiB'],
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
  ];
  for (const [size, unit] of units) if (bytes >= size) return `${(bytes / size).toPrecision(3)} ${unit}`;
  return `${Math.ceil(bytes / 1024)} KiB`;
}

function estimateOf(registry: ComponentRegistry, kind: ComponentKind, config: ComponentConfig | undefined, measured?: ComponentEstimate): ComponentEstimate {
  if (!config || !registry.has(kind, config.type)) return {};
  if (kind === 'meta-optimizer' && config.type === PER_GROUP_TYPE && hasEstimate(registry, kind, config)) return perGroupEstimate(registry, config);
  const def = registry.get(kind, config.type);
  return def.estimate?.(config.options ?? {}) ?? measured ?? {};
}

/** A per-group config's groups, each as the kind of component it names. */
function perGroupEntries(config: ComponentConfig): Array<{ kind: ComponentKind; config: ComponentConfig }> {
  const groups = (config.options?.groups ?? {}) as unknown as Record<string, ComponentConfig & { kind?: string }>;
  return Object.values(groups).map((g) => ({ kind: g.kind === BASELINE_GROUP_KIND ? 'optimizer' : 'meta-optimizer', config: g }));
}

/**
 * A per-group meta-optimizer's sizes from its groups' (the component itself cannot see them): the weights add
 * up; the sizes per coordinate are the smallest group's, since which coordinates each group gets is known only
 * from a built task; a fused kernel only where every learned group has one. A baseline group has no weights and
 * counts as nothing per coordinate.
 */
function perGroupEstimate(registry: ComponentRegistry, config: ComponentConfig): ComponentEstimate {
  const entries = perGroupEntries(config);
  const parts = entries.map((g) => (g.kind === 'optimizer' ? {} : estimateOf(registry, g.kind, g.config)));
  const least = (key: 'stepBytes' | 'stateBytes') => Math.min(...parts.map((p) => p[key] ?? 0));
  // A baseline group runs in the kernel on tfjs (BaselineKernel): only the learned groups need kernels.
  const learned = parts.filter((_, i) => entries[i]!.kind !== 'optimizer');
  const fused = learned.every((p) => p.fusedStepBytes !== undefined) ? Math.min(...learned.map((p) => p.fusedStepBytes!)) : undefined;
  return {
    weights: parts.reduce((n, p) => n + (p.weights ?? 0), 0),
    stepBytes: least('stepBytes'),
    stateBytes: least('stateBytes'),
    ...(fused !== undefined && { fusedStepBytes: fused }),
  };
}

/** Whether the pre-flight can size a component from its options alone (it has an `estimate`; per-group: every learned group's has one). */
export function hasEstimate(registry: ComponentRegistry, kind: ComponentKind, config: ComponentConfig | undefined): boolean {
  if (!config || !registry.has(kind, config.type)) return false;
  if (kind === 'meta-optimizer' && config.type === PER_GROUP_TYPE) {
    return perGroupEntries(config).every((g) => g.kind === 'optimizer' || hasEstimate(registry, g.kind, g.config));
  }
  return typeof registry.get(kind, config.type).estimate === 'function';
}

/**
 * The components the pre-flight cannot size from their options, because they give no `estimate` (plugins may
 * not): `optimizee "boom" (boom-plugin)`, one each. Their sizes are measured once they are built (`train`, `eval`),
 * so the check then sees their parameters, tensors and state, not their per-step tape.
 */
export function unestimatedComponents(experiment: ExperimentConfig, registry: ComponentRegistry, mode: PreflightMode): string[] {
  const slots: Array<[ComponentKind, ComponentConfig | undefined]> = [['optimizee', experiment.optimizee]];
  if (mode !== 'eval') slots.push(['meta-optimizer', experiment.metaOptimizer]);
  return slots
    .filter(([kind, config]) => config && registry.has(kind, config.type) && !hasEstimate(registry, kind, config))
    .map(([kind, config]) => `${kind} "${config!.type}" (${registry.get(kind, config!.type).source})`);
}

/** One line saying which components the pre-flight could not size from their options (empty when none). */
export function preflightNote(experiment: ExperimentConfig, registry: ComponentRegistry, mode: PreflightMode): string {
  const missing = unestimatedComponents(experiment, registry, mode);
  if (!missing.length) return '';
  return `${missing.join(' and ')} ${missing.length > 1 ? 'give' : 'gives'} no size estimate: the pre-flight cannot check ${missing.length > 1 ? 'their' : 'its'} memory from the config; it is measured once built (parameters, tensors, a meta-optimizer's weights and state), the per-step tape is not`;
}

/** The most memory a run may use on `backend`, and what that limit is called in messages. */
export function memoryLimit(backend: string): { bytes: number; what: string } {
  const ram = os.totalmem();
  // auto prefers tfjs-node, which cannot be checked without loading it; wasm is what auto gets without it.
  if (backend === 'wasm' || backend === 'auto') {
    return ram < WASM_MEMORY_LIMIT ? { bytes: ram, what: `this machine's ${gib(ram)} of RAM` } : { bytes: WASM_MEMORY_LIMIT, what: `the wasm backend's ${gib(WASM_MEMORY_LIMIT)} heap` };
  }
  return { bytes: ram, what: `this machine's ${gib(ram)} of RAM` };
}

/**
 * For the built-in forward-only estimators (ES, PES), the runs alive at once and the float64 accumulators of
 * accumulated noise: ES a task's run and one branch from it; PES 2·samples particles and the next truncation of
 * one of them, and one accumulator per particle pair. Undefined for tbptt and for a plugin's estimator, which
 * the pre-flight sizes as a tape.
 */
function forwardOnlyRuns(estimator: ComponentConfig | undefined): { runs: number; accumulators: number } | undefined {
  const type = estimator?.type;
  if (type !== 'es' && type !== 'pes') return undefined;
  const samples = Number((estimator!.options as { samples?: number } | undefined)?.samples ?? ES_DEFAULTS.samples);
  return type === 'es' ? { runs: 2, accumulators: 0 } : { runs: 2 * samples + 1, accumulators: samples };
}

/** The lower bounds behind the pre-flight, in bytes (exported for tests and messages). */
export function estimateRunMemory(experiment: ExperimentConfig, registry: ComponentRegistry, measured: PreflightOverrides['measured'] = {}): { train: number | null; evaluation: number } {
  const opt = estimateOf(registry, 'optimizee', experiment.optimizee, measured.optimizee);
  const meta = estimateOf(registry, 'meta-optimizer', experiment.metaOptimizer, measured.metaOptimizer);
  const coordinates = opt.coordinates ?? 0;
  const weights = meta.weights ?? 0;
  const t = experiment.training;
  // Gradient checkpointing keeps one segment's tape and a carry per segment boundary.
  const segment = t.checkpointEvery ? Math.min(t.checkpointEvery, t.unroll) : t.unroll;
  const boundaries = t.checkpointEvery ? Math.ceil(t.unroll / t.checkpointEvery) : 0;
  // Worker threads each hold a chunk of the coordinates (and their own heap).
  const share = Math.max(1, Math.min(t.workers ?? 0, coordinates) || 1);
  const perCoordinateTape = (meta.stepBytes ?? 0) + FLOAT; // plus each coordinate's update
  // A fused kernel (training.kernel auto or fused, first order) keeps no tape: per step only what its estimate
  // says, and the optimizee's loss and gradient run untaped, one step at a time.
  const fused = meta.fusedStepBytes !== undefined && t.kernel !== 'tfjs' && !t.secondDerivatives;
  const forwardRuns = forwardOnlyRuns(t.estimator);
  const train = !experiment.metaOptimizer
    ? null
    : forwardRuns
      ? // ES and PES keep no tape on either path: φ, Adam's moments, a perturbed φ, the noise (float32) and the
        // estimate's sums (float64), PES's accumulated noise per particle pair (float64), and their runs (a state,
        // the parameters and their gradient per coordinate), one optimizee step at a time.
        (opt.bytes ?? 0) +
        weights * FLOAT * (7 + 2 * forwardRuns.accumulators) +
        forwardRuns.runs * coordinates * ((meta.stateBytes ?? 0) + 2 * FLOAT) +
        (opt.stepBytes ?? 0)
      : fused
      ? (opt.bytes ?? 0) + 4 * weights * FLOAT + coordinates * (2 * (meta.stateBytes ?? 0) + t.unroll * meta.fusedStepBytes! + 2 * FLOAT) + (opt.stepBytes ?? 0)
      : (opt.bytes ?? 0) +
        4 * weights * FLOAT + // weights, meta-gradient, Adam's two moments
        (coordinates / share) * ((meta.stateBytes ?? 0) * (1 + boundaries) + segment * perCoordinateTape) +
        segment * (opt.stepBytes ?? 0);
  // Evaluation runs without a tape: the task, its parameters and an optimizer's state.
  const evaluation = (opt.bytes ?? 0) + weights * FLOAT + coordinates * (Math.max(meta.stateBytes ?? 0, 3 * FLOAT) + FLOAT) + (opt.stepBytes ?? 0);
  return { train, evaluation };
}

/**
 * The problems that would stop a run before it starts, one line each, prefixed by `where` (the config file);
 * empty when the run fits. `mode` says which runs to check (`all`: training, when there is a meta-optimizer,
 * and evaluation).
 */
export function preflightProblems(experiment: ExperimentConfig, registry: ComponentRegistry, where: string, mode: PreflightMode, overrides: PreflightOverrides = {}): string[] {
  // steps and tasks do not change the peak: tasks run one after another, losses are numbers.
  const problems: string[] = [];
  const limit = memoryLimit(experiment.backend);
  const { train, evaluation } = estimateRunMemory(experiment, registry, overrides.measured);
  const sizes = [experiment.optimizee, experiment.metaOptimizer]
    .filter((c): c is ComponentConfig => !!c)
    .map((c) => `${c.type} ${JSON.stringify(c.options ?? {})}`)
    .join(' with ');
  const shorten = (s: string) => (s.length > 160 ? s.slice(0, 157) + '...' : s);
  const measuredNote = overrides.measured && (overrides.measured.optimizee || overrides.measured.metaOptimizer) ? ' (sizes measured on the built components)' : '';
  if ((mode === 'train' || mode === 'all') && train !== null && train > limit.bytes) {
    problems.push(
      `${where}: meta-training ${shorten(sizes)} would need at least ${gib(train)} of memory (unroll ${experiment.training.unroll})${measuredNote}, more than ${limit.what}; ` +
        'make the optimizee or meta-optimizer smaller, or shorten the tape (training.unroll, training.checkpointEvery, training.workers)',
    );
  }
  if ((mode === 'eval' || mode === 'all') && evaluation > limit.bytes) {
    problems.push(`${where}: evaluating on ${shorten(sizes)} would need at least ${gib(evaluation)} of memory${measuredNote}, more than ${limit.what}; make the optimizee or meta-optimizer smaller`);
  }
  return problems;
}

/** `preflightProblems`, thrown: a `ConfigError` listing every problem. */
export function preflightExperiment(experiment: ExperimentConfig, registry: ComponentRegistry, where: string, mode: PreflightMode, overrides: PreflightOverrides = {}): void {
  const problems = preflightProblems(experiment, registry, where, mode, overrides);
  if (problems.length) throw new ConfigError(problems.join('; '), problems);
}
