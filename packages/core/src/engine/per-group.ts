import * as tf from '@tensorflow/tfjs-core';
import type { FusedKernel, FusedParameter, FusedRun, FusedSnapshot } from '../contracts/fused';
import type { ComponentConfig, JsonObject } from '../contracts/json';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { Optimizer, OptimizerState, StepContext } from '../contracts/optimizer';
import { DEFAULT_PARAMETER_GROUP, PARAMETER_GROUP_PATTERN, parameterGroupsOf, type TaskFamily } from '../contracts/task';
import { UserError } from '../errors';
import { disposeTree, keepTree, mapTree, type NamedTensors, type TensorTree } from '../tensor-tree';

/*
 * One learned optimizer per parameter group (Andrychowicz et al. 2016, §3.3: on CIFAR-10 one LSTM for the conv
 * kernels and one for the rest, sharing no weights; DeepMind's `net_assignments`). The task says which group
 * each parameter is in (`Task.parameterGroups`); the engine hands that to `Optimizer.init` and to fused kernels'
 * `open`, and everything else (meta-gradients, checkpoints, evaluation) sees one meta-optimizer whose weights
 * are its groups' weights under `<group>/<name>`.
 */

/** The component type under which per-group meta-optimizers are registered and saved. */
export const PER_GROUP_TYPE = 'per-group';

/** Each group's parameter names, in the order the parameters come, from each parameter's group. */
function namesByGroup(names: readonly string[], groups: Readonly<Record<string, string>> | undefined, known: readonly string[], who: string): Map<string, string[]> {
  const out = new Map<string, string[]>(known.map((g) => [g, []]));
  for (const name of names) {
    const group = groups ? groups[name] : DEFAULT_PARAMETER_GROUP;
    if (group === undefined) throw new Error(`${who}: parameter "${name}" has no group`);
    const list = out.get(group);
    if (!list) throw new Error(`${who}: parameter "${name}" is in group "${group}", which has no optimizer here (groups: ${known.join(', ')})`);
    list.push(name);
  }
  return out;
}

const pick = (tensors: NamedTensors, names: readonly string[]): NamedTensors => Object.fromEntries(names.map((n) => [n, tensors[n]!]));

/**
 * The optimizer of a per-group meta-optimizer: each group's parameters go to that group's optimizer. Its state's
 * slots are `{ <group>: { names, slots } }` (names: the group's parameters, so `update` needs no assignment).
 * A group of the optimizer that the parameters leave empty is skipped: the paper's net_assignments may name
 * a group a task lacks (as `init` without groups puts every parameter in `DEFAULT_PARAMETER_GROUP`).
 */
export class PerGroupOptimizer implements Optimizer {
  readonly name: string;
  /** Where every learned group has a kernel: theirs, and the baseline groups' own tfjs updates (BaselineKernel). */
  readonly fused?: FusedKernel;

  /** `baselineGroups`: the groups whose optimizer is a fixed baseline with no weights (BaselineGroup). */
  constructor(
    readonly optimizers: Readonly<Record<string, Optimizer>>,
    baselineGroups: readonly string[] = [],
  ) {
    const groups = Object.keys(optimizers);
    if (groups.length === 0) throw new Error('PerGroupOptimizer: no groups');
    this.name = `per-group(${groups.map((g) => `${g}: ${optimizers[g]!.name}`).join(', ')})`;
    const kernels = groups.map((g) => optimizers[g]!.fused ?? (baselineGroups.includes(g) ? new BaselineKernel(optimizers[g]!) : undefined));
    const learned = groups.filter((g) => !baselineGroups.includes(g));
    if (learned.length > 0 && kernels.every((k) => k !== undefined)) this.fused = new PerGroupKernel(Object.fromEntries(groups.map((g, i) => [g, kernels[i]!])));
  }

  init(params: NamedTensors, groups?: Readonly<Record<string, string>>): OptimizerState {
    const byGroup = namesByGroup(Object.keys(params), groups, Object.keys(this.optimizers), this.name);
    const slots: Record<string, TensorTree> = {};
    const out: NamedTensors = {};
    for (const [group, names] of byGroup) {
      if (names.length === 0) continue;
      const sub = this.optimizers[group]!.init(pick(params, names), Object.fromEntries(names.map((n) => [n, group])));
      slots[group] = { names, slots: sub.slots };
      Object.assign(out, sub.params);
    }
    // Parameters in their original order (a fused layout and checkpoints follow it).
    return { params: pick(out, Object.keys(params)), slots, step: 0 };
  }

  update(state: OptimizerState, grads: NamedTensors, ctx: StepContext): OptimizerState {
    const slots: Record<string, TensorTree> = {};
    const out: NamedTensors = {};
    for (const [group, entry] of Object.entries(state.slots as Record<string, { names: string[]; slots: TensorTree }>)) {
      const optimizer = this.optimizers[group];
      if (!optimizer) throw new Error(`${this.name}: the state has group "${group}", which has no optimizer here`);
      const sub = optimizer.update({ params: pick(state.params, entry.names), slots: entry.slots, step: state.step }, pick(grads, entry.names), ctx);
      slots[group] = { names: entry.names, slots: sub.slots };
      Object.assign(out, sub.params);
    }
    return { params: pick(out, Object.keys(state.params)), slots, step: state.step + 1 };
  }
}

/** Each group's coordinates as runs of [from, to) on the whole axis, and the group's own parameters. */
interface GroupSlice {
  readonly group: string;
  readonly ranges: Array<[number, number]>;
  readonly size: number;
  readonly parameters: FusedParameter[];
}

/** A per-group run's snapshot: its groups' runs' snapshots, in the groups' order. */
class GroupSnapshot implements FusedSnapshot {
  constructor(
    readonly coordinates: number,
    readonly groups: readonly string[],
    readonly parts: readonly FusedSnapshot[],
  ) {}
  dispose(): void {
    for (const p of this.parts) p.dispose();
  }
}

/** A fused kernel per group: each group's coordinates are gathered into its own run and scattered back. */
class PerGroupKernel implements FusedKernel {
  readonly description: string;

  constructor(private readonly kernels: Readonly<Record<string, FusedKernel>>) {
    const descriptions = [...new Set(Object.values(kernels).map((k) => k.description))];
    this.description = `per group (${Object.keys(kernels).join(', ')}): ${descriptions.join('; ')}`;
  }

  open(n: number, options: { threads?: number; parameters?: readonly FusedParameter[] } = {}): FusedRun {
    const known = Object.keys(this.kernels);
    const parameters = options.parameters ?? [{ name: '(all)', size: n, group: DEFAULT_PARAMETER_GROUP }];
    const total = parameters.reduce((a, p) => a + p.size, 0);
    if (total !== n) throw new Error(`per-group kernel: the parameters cover ${total} coordinates, not ${n}`);
    const slices = new Map<string, GroupSlice>();
    let at = 0;
    for (const p of parameters) {
      if (!this.kernels[p.group]) throw new Error(`per-group kernel: parameter "${p.name}" is in group "${p.group}", which has no optimizer here (groups: ${known.join(', ')})`);
      let slice = slices.get(p.group);
      if (!slice) slices.set(p.group, (slice = { group: p.group, ranges: [], size: 0, parameters: [] }));
      slice.ranges.push([at, at + p.size]);
      (slice as { size: number }).size += p.size;
      slice.parameters.push(p);
      at += p.size;
    }
    const runs: Array<{ slice: GroupSlice; run: FusedRun; grads: Float32Array; params: Float32Array }> = [];
    try {
      for (const slice of slices.values()) {
        const threads = Math.max(1, Math.min(options.threads ?? 1, slice.size));
        runs.push({ slice, run: this.kernels[slice.group]!.open(slice.size, { threads, parameters: slice.parameters }), grads: new Float32Array(slice.size), params: new Float32Array(slice.size) });
      }
    } catch (e) {
      for (const r of runs) r.run.dispose();
      throw e;
    }
    const gather = (from: Float32Array, slice: GroupSlice, into: Float32Array) => {
      let k = 0;
      for (const [a, b] of slice.ranges) {
        into.set(from.subarray(a, b), k);
        k += b - a;
      }
    };
    const scatter = (from: Float32Array, slice: GroupSlice, into: Float32Array) => {
      let k = 0;
      for (const [a, b] of slice.ranges) {
        into.set(from.subarray(k, k + b - a), a);
        k += b - a;
      }
    };
    return {
      coordinates: n,
      reloadWeights: () => runs.forEach((r) => r.run.reloadWeights()),
      beginUnroll: (length) => runs.forEach((r) => r.run.beginUnroll(length)),
      step(grads, params) {
        for (const r of runs) {
          gather(grads, r.slice, r.grads);
          gather(params, r.slice, r.params);
          r.run.step(r.grads, r.params);
          scatter(r.params, r.slice, params);
        }
      },
      backward(adjoints) {
        const out: Record<string, Float32Array> = {};
        for (const r of runs) {
          const own = adjoints.map((a) => {
            const x = new Float32Array(r.slice.size);
            gather(a, r.slice, x);
            return x;
          });
          for (const [name, g] of Object.entries(r.run.backward(own))) out[`${r.slice.group}/${name}`] = g;
        }
        return out;
      },
      snapshot() {
        const parts: FusedSnapshot[] = [];
        try {
          for (const r of runs) parts.push(r.run.snapshot());
        } catch (e) {
          for (const p of parts) p.dispose();
          throw e;
        }
        return new GroupSnapshot(n, runs.map((r) => r.slice.group), parts);
      },
      restore(snapshot) {
        const groups = runs.map((r) => r.slice.group);
        if (!(snapshot instanceof GroupSnapshot) || snapshot.coordinates !== n || snapshot.groups.join() !== groups.join()) {
          throw new Error(`per-group kernel: the snapshot is not of a per-group run over these ${n} coordinates in groups ${groups.join(', ')}`);
        }
        runs.forEach((r, i) => r.run.restore(snapshot.parts[i]!));
      },
      dispose: () => runs.forEach((r) => r.run.dispose()),
    };
  }
}

/** A baseline kernel run's snapshot: copies of the optimizer's slots (null before the first step) and its step. */
class BaselineSnapshot implements FusedSnapshot {
  private disposed = false;
  constructor(
    readonly optimizer: string,
    readonly coordinates: number,
    private readonly kept: TensorTree | null,
    readonly step: number,
  ) {}
  get slots(): TensorTree | null {
    if (this.disposed) throw new Error(`baseline kernel (${this.optimizer}): the snapshot was disposed`);
    return this.kept;
  }
  dispose(): void {
    if (!this.disposed && this.kept !== null) disposeTree(this.kept);
    this.disposed = true;
  }
}

/**
 * A baseline group's part of a per-group kernel: the hand-designed optimizer's own tfjs update on the group's
 * coordinates, one 1-D tensor per parameter (the elementwise rules of the built-in baselines do not see shapes),
 * so that a per-group meta-optimizer with a baseline group (an LSTM for conv, Adam for fc) takes the fused path,
 * threads included, like one without. It has no weights and, first order, its updates do not depend on φ: its
 * meta-gradient is empty. It runs in the calling thread whatever `threads` says.
 */
export class BaselineKernel implements FusedKernel {
  readonly description: string;

  constructor(private readonly optimizer: Optimizer) {
    this.description = `${optimizer.name} on tfjs`;
  }

  open(n: number, options: { threads?: number; parameters?: readonly FusedParameter[] } = {}): FusedRun {
    const { optimizer } = this;
    const parameters = options.parameters ?? [{ name: '(all)', size: n, group: DEFAULT_PARAMETER_GROUP }];
    const offsets: number[] = [];
    let total = 0;
    for (const p of parameters) {
      offsets.push(total);
      total += p.size;
    }
    if (total !== n) throw new Error(`baseline kernel (${optimizer.name}): the parameters cover ${total} coordinates, not ${n}`);
    const groups = Object.fromEntries(parameters.map((p) => [p.name, p.group]));
    // Copies: the cpu backend keeps the array it is given, and the caller's arrays change at every step.
    const tensors = (flat: Float32Array): NamedTensors =>
      Object.fromEntries(parameters.map((p, i) => [p.name, tf.tensor1d(flat.slice(offsets[i]!, offsets[i]! + p.size), 'float32')]));
    let slots: TensorTree | null = null;
    let step = 0;
    return {
      coordinates: n,
      reloadWeights: () => {},
      beginUnroll: () => {},
      step(grads, params) {
        // The parameters are the caller's (the engine's θ); the optimizer's slots are kept here between steps.
        let next: OptimizerState | undefined;
        tf.tidy(() => {
          const theta = tensors(params);
          const state = slots === null ? optimizer.init(theta, groups) : { params: theta, slots, step };
          next = keepTree(optimizer.update(state, tensors(grads), { step, training: false }));
        });
        const updated = next as OptimizerState | undefined;
        if (!updated) throw new Error(`baseline kernel (${optimizer.name}): no update`);
        try {
          parameters.forEach((p, i) => params.set(updated.params[p.name]!.dataSync() as Float32Array, offsets[i]));
        } finally {
          disposeTree(updated.params, updated.slots);
          if (slots !== null) disposeTree(slots, updated.slots);
        }
        slots = updated.slots;
        step++;
      },
      backward: () => ({}),
      snapshot: () => new BaselineSnapshot(optimizer.name, n, slots === null ? null : mapTree(slots, (t) => tf.clone(t)), step),
      restore(snapshot) {
        if (!(snapshot instanceof BaselineSnapshot) || snapshot.optimizer !== optimizer.name || snapshot.coordinates !== n) {
          throw new Error(`baseline kernel (${optimizer.name}): the snapshot is not of this optimizer over ${n} coordinates`);
        }
        const kept = snapshot.slots;
        const copy = kept === null ? null : mapTree(kept, (t) => tf.clone(t));
        if (slots !== null) disposeTree(slots);
        slots = copy;
        step = snapshot.step;
      },
      dispose() {
        if (slots !== null) disposeTree(slots);
        slots = null;
      },
    };
  }
}

/** How a group's entry in a per-group config names a baseline (an `optimizer` component) instead of a meta-optimizer. */
export const BASELINE_GROUP_KIND = 'optimizer';

/**
 * A group's fixed, hand-designed optimizer (Adam, SGD, …) inside a per-group meta-optimizer: DeepMind's
 * "simple-multi" gives one group an LSTM and another Adam. It has no weights, so meta-training leaves it as it
 * is; its config carries `kind: "optimizer"` so that checkpoints rebuild it as a baseline.
 */
export class BaselineGroup implements MetaOptimizer {
  readonly type: string;
  readonly variables: Readonly<Record<string, tf.Variable>> = {};
  readonly coordinatewise = false;

  constructor(
    private readonly baseline: Optimizer,
    private readonly componentConfig: ComponentConfig,
  ) {
    this.type = componentConfig.type;
  }

  config(): ComponentConfig {
    return { kind: BASELINE_GROUP_KIND, type: this.componentConfig.type, options: this.componentConfig.options ?? {} } as ComponentConfig;
  }

  getWeights(): NamedTensors {
    return {};
  }

  setWeights(weights: NamedTensors): void {
    const names = Object.keys(weights);
    if (names.length) throw new Error(`baseline "${this.type}" in a per-group meta-optimizer has no weights, got ${names.join(', ')}`);
  }

  optimizer(): Optimizer {
    return this.baseline;
  }

  dispose(): void {}
}

/** Checks a group name (kebab-case, as tasks give them). */
export function checkGroupName(group: string, where: string): void {
  if (!PARAMETER_GROUP_PATTERN.test(group)) throw new Error(`${where}: group names are kebab-case (conv, fc, layer-0), got ${JSON.stringify(group)}`);
}

/**
 * A meta-optimizer per parameter group. Its weights are its groups' weights named `<group>/<name>`; its config
 * is `{type: "per-group", options: {groups: {<group>: <that group's config>}}}`, so checkpoints, `--resume` and
 * evaluation rebuild it through the registry like any meta-optimizer. Takes ownership of `metas`.
 */
export class PerGroupMetaOptimizer implements MetaOptimizer {
  readonly type = PER_GROUP_TYPE;
  readonly variables: Readonly<Record<string, tf.Variable>>;
  readonly coordinatewise: boolean;

  constructor(readonly metas: Readonly<Record<string, MetaOptimizer>>) {
    const groups = Object.keys(metas);
    if (groups.length === 0) throw new Error('per-group meta-optimizer: no groups');
    if (groups.every((g) => metas[g] instanceof BaselineGroup)) throw new Error('per-group meta-optimizer: every group is a baseline, so there is nothing to meta-train');
    for (const g of groups) checkGroupName(g, 'per-group meta-optimizer');
    const variables: Record<string, tf.Variable> = {};
    for (const g of groups) for (const [name, v] of Object.entries(metas[g]!.variables)) variables[`${g}/${name}`] = v;
    this.variables = variables;
    this.coordinatewise = groups.every((g) => metas[g]!.coordinatewise === true);
  }

  /** The group names, in config order. */
  get groups(): string[] {
    return Object.keys(this.metas);
  }

  config(): ComponentConfig {
    const groups: JsonObject = {};
    for (const [g, m] of Object.entries(this.metas)) groups[g] = m.config() as unknown as JsonObject;
    return { type: PER_GROUP_TYPE, options: { groups } };
  }

  getWeights(): NamedTensors {
    const out: NamedTensors = {};
    for (const [g, m] of Object.entries(this.metas)) for (const [name, t] of Object.entries(m.getWeights())) out[`${g}/${name}`] = t;
    return out;
  }

  setWeights(weights: NamedTensors): void {
    const expected = Object.keys(this.variables);
    const missing = expected.filter((n) => !Object.hasOwn(weights, n));
    const extra = Object.keys(weights).filter((n) => !Object.hasOwn(this.variables, n));
    if (missing.length || extra.length) {
      const say = (xs: string[]) => xs.slice(0, 5).join(', ') + (xs.length > 5 ? `, … (${xs.length})` : '');
      throw new Error(`per-group meta-optimizer (${this.groups.join(', ')}): weights ${missing.length ? `missing ${say(missing)}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `not its own: ${say(extra)}` : ''}`);
    }
    for (const [g, m] of Object.entries(this.metas)) {
      const own: NamedTensors = {};
      for (const name of Object.keys(m.variables)) own[name] = weights[`${g}/${name}`]!;
      m.setWeights(own);
    }
  }

  /** Each group's optimizer; with `weights` (named `<group>/<name>`), each from its group's share of them. */
  optimizer(weights?: Readonly<Record<string, tf.Tensor>>): Optimizer {
    if (weights) {
      const expected = Object.keys(this.variables);
      const missing = expected.filter((n) => !Object.hasOwn(weights, n));
      const extra = Object.keys(weights).filter((n) => !Object.hasOwn(this.variables, n));
      if (missing.length || extra.length) {
        throw new Error(`per-group meta-optimizer (${this.groups.join(', ')}): optimizer(weights): ${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `not its own: ${extra.join(', ')}` : ''}`);
      }
    }
    const own = (g: string, m: MetaOptimizer) =>
      weights ? m.optimizer(Object.fromEntries(Object.keys(m.variables).map((name) => [name, weights[`${g}/${name}`]!]))) : m.optimizer();
    return new PerGroupOptimizer(
      Object.fromEntries(Object.entries(this.metas).map(([g, m]) => [g, own(g, m)])),
      this.groups.filter((g) => this.metas[g] instanceof BaselineGroup),
    );
  }

  dispose(): void {
    for (const m of Object.values(this.metas)) m.dispose();
  }
}

/** The parameter groups of a family's tasks (they all report the same), from one training task. */
export function familyParameterGroups(family: TaskFamily): string[] {
  const task = family.build(family.sample(0, 'train'));
  try {
    const params = task.initParams(0);
    try {
      return [...new Set(Object.values(parameterGroupsOf(task, Object.keys(params))))];
    } finally {
      disposeTree(params);
    }
  } finally {
    task.dispose();
  }
}

/**
 * Throws a UserError when a per-group meta-optimizer's groups are not exactly the family's: a group the tasks
 * lack, or a group of theirs with no optimizer. `where`: the file and field to name (`x.json: metaOptimizer`).
 * Other meta-optimizers pass.
 */
export function checkParameterGroups(meta: MetaOptimizer, family: TaskFamily, where: string): void {
  if (!(meta instanceof PerGroupMetaOptimizer)) return;
  const theirs = familyParameterGroups(family);
  const ours = meta.groups;
  const unknown = ours.filter((g) => !theirs.includes(g));
  const uncovered = theirs.filter((g) => !ours.includes(g));
  const has = `optimizee "${family.type}" has parameter groups ${theirs.map((g) => `"${g}"`).join(', ')}`;
  if (unknown.length) throw new UserError(`${where}.options.groups: no parameter group ${unknown.map((g) => `"${g}"`).join(', ')} (${has})`);
  if (uncovered.length) throw new UserError(`${where}.options.groups: no meta-optimizer for group ${uncovered.map((g) => `"${g}"`).join(', ')} (${has}; give each one)`);
}

/**
 * How the variables of a model of your own (VariableOptimizer, TfOptimizer) get parameter groups: a group per
 * variable name, or "conv-fc": rank-4 tensors (conv kernels) in "conv", the rest in "fc", as conv-net and stn
 * group theirs (and the only choice that survives a reloaded tfjs-layers model, whose variables are renamed).
 */
export type ParameterGrouping = 'conv-fc' | Readonly<Record<string, string>>;

/** Each variable's group under `grouping`; undefined without one (every variable then in `DEFAULT_PARAMETER_GROUP`). */
export function groupVariables(tensors: Readonly<Record<string, tf.Tensor>>, grouping: ParameterGrouping | undefined, who: string): Record<string, string> | undefined {
  if (grouping === undefined) return undefined;
  const names = Object.keys(tensors);
  if (grouping === 'conv-fc') return Object.fromEntries(names.map((n) => [n, tensors[n]!.rank === 4 ? 'conv' : 'fc']));
  if (typeof grouping !== 'object' || grouping === null) throw new Error(`${who}: groups must be "conv-fc" or an object of variable name → group, got ${JSON.stringify(grouping)}`);
  const missing = names.filter((n) => typeof grouping[n] !== 'string');
  if (missing.length) throw new Error(`${who}: groups gives no group for variable(s) ${missing.map((n) => `"${n}"`).join(', ')}`);
  return Object.fromEntries(names.map((n) => [n, grouping[n]!]));
}
