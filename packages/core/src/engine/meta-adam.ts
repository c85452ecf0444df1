import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '../tensor-tree';
import type { OuterOptimizer } from './outer-optimizer';

/**
 * Adam for the meta-optimizer's weights, keyed by their stable names so its state checkpoints and resumes
 * exactly (tf.train.adam keys its state by tfjs's global variable names, which differ between processes).
 * The meta-level needs no gradients through itself, so it assigns in place.
 */
export class MetaAdam implements OuterOptimizer {
  step = 0;
  private readonly m = new Map<string, tf.Tensor>();
  private readonly v = new Map<string, tf.Tensor>();

  constructor(
    readonly learningRate: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-8,
  ) {}

  apply(variables: Readonly<Record<string, tf.Variable>>, grads: NamedTensors, learningRateScale = 1): void {
    this.step++;
    const t = this.step;
    // × 1 leaves the learning rate's bits as they are: runs without a schedule are unchanged.
    const lr = (this.learningRate * learningRateScale * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
    for (const [name, variable] of Object.entries(variables)) {
      const g = grads[name];
      if (!g) continue;
      const m0 = this.m.get(name);
      const v0 = this.v.get(name);
      const [m, v] = tf.tidy(() => {
        const m1 = m0 ? tf.add(tf.mul(m0, this.beta1), tf.mul(g, 1 - this.beta1)) : tf.mul(g, 1 - this.beta1);
        const v1 = v0 ? tf.add(tf.mul(v0, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)) : tf.mul(tf.square(g), 1 - this.beta2);
        variable.assign(tf.sub(variable, tf.div(tf.mul(m1, lr), tf.add(tf.sqrt(v1), this.epsilon))));
        return [m1, v1];
      });
      m0?.dispose();
      v0?.dispose();
      this.m.set(name, m!);
      this.v.set(name, v!);
    }
  }

  /** Moments under `name/m` and `name/v` (owned by the optimizer: do not dispose). */
  state(): { step: number; tensors: NamedTensors } {
    const tensors: NamedTensors = {};
    for (const [k, t] of this.m) tensors[`${k}/m`] = t;
    for (const [k, t] of this.v) tensors[`${k}/v`] = t;
    return { step: this.step, tensors };
  }

  /** Restores a `state()`; copies the tensors. */
  restore(step: number, tensors: NamedTensors): void {
    this.dispose();
    this.step = step;
    for (const [key, t] of Object.entries(tensors)) {
      const slash = key.lastIndexOf('/');
      const name = key.slice(0, slash);
      const which = key.slice(slash + 1);
      if (which === 'm') this.m.set(name, tf.clone(t));
      else if (which === 'v') this.v.set(name, tf.clone(t));
      else throw new Error(`meta-optimizer Adam state: unexpected tensor "${key}"`);
    }
  }

  dispose(): void {
    for (const t of this.m.values()) t.dispose();
    for (const t of this.v.values()) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
