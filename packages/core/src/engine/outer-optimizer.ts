import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer, OptimizerState } from '../contracts/optimizer';
import { cloneNamed, disposeTree, mapTree, type NamedTensors, type TensorTree } from '../tensor-tree';

/**
 * The optimizer of the meta-optimizer's weights φ (the outer loop): one step per meta-gradient estimate, its
 * state under stable names so that checkpoints resume exactly. `MetaAdam` is the default; `FunctionalOuter`
 * wraps any optimizer of the functional contract (the baselines: sgd, momentum, nag, rmsprop, adam, adagrad).
 */
export interface OuterOptimizer {
  /** Steps taken. */
  readonly step: number;
  /**
   * Updates `variables` from `grads` (by weight name) in place, with the learning rate times `learningRateScale`
   * (a schedule's factor; absent: 1).
   */
  apply(variables: Readonly<Record<string, tf.Variable>>, grads: NamedTensors, learningRateScale?: number): void;
  /** The state's tensors under `<weight>/<slot>` names (owned by the optimizer: do not dispose). */
  state(): { step: number; tensors: NamedTensors };
  /** Restores a `state()`; copies the tensors. `variables` are φ's current values (the checkpoint's). */
  restore(step: number, tensors: NamedTensors, variables?: Readonly<Record<string, tf.Variable>>): void;
  dispose(): void;
}

/** Every tensor of a tree under its path, segments joined by "/" (`lstm0/kernel/m`). */
function flattenTree(tree: TensorTree, prefix: string, out: NamedTensors): void {
  if (tree instanceof tf.Tensor) out[prefix] = tree;
  else if (Array.isArray(tree)) tree.forEach((t, i) => flattenTree(t as TensorTree, prefix ? `${prefix}/${i}` : String(i), out));
  else if (tree !== null && typeof tree === 'object') for (const [k, t] of Object.entries(tree)) flattenTree(t as TensorTree, prefix ? `${prefix}/${k}` : k, out);
}

/**
 * Any functional optimizer as the outer optimizer: its state holds φ as params (copies), each step runs
 * `update(state, grads, {step, training: false, learningRateScale})` and assigns the new params to the variables.
 */
export class FunctionalOuter implements OuterOptimizer {
  private current: OptimizerState | null = null;

  constructor(readonly optimizer: Optimizer) {}

  get step(): number {
    return this.current?.step ?? 0;
  }

  private start(variables: Readonly<Record<string, tf.Variable>>): OptimizerState {
    const params = cloneNamed(variables);
    const state = this.optimizer.init(params);
    disposeTree(params, state);
    return state;
  }

  apply(variables: Readonly<Record<string, tf.Variable>>, grads: NamedTensors, learningRateScale = 1): void {
    const state = this.current ?? this.start(variables);
    const full: NamedTensors = {};
    // Weights without a gradient (φ the meta-loss does not reach) get a zero one: the optimizer sees all of φ.
    for (const [name, v] of Object.entries(variables)) full[name] = grads[name] ?? tf.zerosLike(v);
    try {
      const next = tf.tidy(() => this.optimizer.update(state, full, { step: state.step, training: false, learningRateScale }) as unknown as tf.TensorContainer) as unknown as OptimizerState;
      for (const [name, v] of Object.entries(variables)) v.assign(next.params[name]!);
      disposeTree(state as unknown as TensorTree, next as unknown as TensorTree);
      this.current = next;
    } finally {
      for (const [name, g] of Object.entries(full)) if (g !== grads[name]) g.dispose();
    }
  }

  state(): { step: number; tensors: NamedTensors } {
    const tensors: NamedTensors = {};
    if (this.current) flattenTree(this.current.slots, '', tensors);
    return { step: this.step, tensors };
  }

  restore(step: number, tensors: NamedTensors, variables?: Readonly<Record<string, tf.Variable>>): void {
    this.dispose();
    if (step === 0 && Object.keys(tensors).length === 0) return;
    if (!variables) throw new Error(`outer optimizer "${this.optimizer.name}": restoring a state needs φ's variables`);
    const fresh = this.start(variables);
    try {
      // Every slot by path; checked in full before anything is copied, so a bad state leaks nothing.
      const expected: NamedTensors = {};
      flattenTree(fresh.slots, '', expected);
      const owner = `outer optimizer "${this.optimizer.name}" state`;
      for (const [path, t] of Object.entries(expected)) {
        const given = tensors[path];
        if (!given) throw new Error(`${owner}: tensor "${path}" is missing`);
        if (given.shape.join() !== t.shape.join()) throw new Error(`${owner}: tensor "${path}" has shape [${given.shape.join(', ')}], expected [${t.shape.join(', ')}]`);
      }
      const extra = Object.keys(tensors).filter((k) => !(k in expected));
      if (extra.length) throw new Error(`${owner}: unexpected tensor(s) ${extra.map((k) => `"${k}"`).join(', ')}`);
      const byTensor = new Map(Object.entries(expected).map(([path, t]) => [t, path]));
      const slots = mapTree(fresh.slots, (t) => tf.clone(tensors[byTensor.get(t)!]!));
      this.current = { params: cloneNamed(fresh.params), slots, step };
    } finally {
      disposeTree(fresh as unknown as TensorTree);
    }
  }

  dispose(): void {
    if (this.current) disposeTree(this.current as unknown as TensorTree);
    this.current = null;
  }
}
