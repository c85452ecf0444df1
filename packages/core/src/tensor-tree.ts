import * as tf from '@tensorflow/tfjs-core';

/** Parameters, gradients and weights: tensors under stable names (`"w"`, `"layer0/kernel"`). */
export type NamedTensors = Record<string, tf.Tensor>;

/** Any nesting of tensors and plain values: optimizer state, batches, checkpoints. */
export type TensorTree =
  | tf.Tensor
  | number
  | string
  | boolean
  | null
  | undefined
  | readonly TensorTree[]
  | { readonly [key: string]: TensorTree };

/** Every tensor in a tree, depth first, each once. */
export function treeTensors(tree: TensorTree, out: tf.Tensor[] = [], seen = new Set<tf.Tensor>()): tf.Tensor[] {
  if (tree instanceof tf.Tensor) {
    if (!seen.has(tree)) {
      seen.add(tree);
      out.push(tree);
    }
  } else if (Array.isArray(tree)) {
    for (const t of tree) treeTensors(t, out, seen);
  } else if (tree !== null && typeof tree === 'object') {
    for (const t of Object.values(tree)) treeTensors(t as TensorTree, out, seen);
  }
  return out;
}

/** Disposes every tensor of `tree` that is not also in `keep` (e.g. the next state sharing slots). */
export function disposeTree(tree: TensorTree, keep?: TensorTree): void {
  const kept = keep === undefined ? new Set<tf.Tensor>() : new Set(treeTensors(keep));
  for (const t of treeTensors(tree)) if (!kept.has(t) && !t.isDisposed) t.dispose();
}

/** Marks every tensor of a tree with `tf.keep` so that it outlives the enclosing `tf.tidy`. */
export function keepTree<T extends TensorTree>(tree: T): T {
  for (const t of treeTensors(tree)) tf.keep(t);
  return tree;
}

/** Applies `fn` to each tensor of a tree, keeping its shape and plain values. */
export function mapTree<T extends TensorTree>(tree: T, fn: (t: tf.Tensor) => tf.Tensor): T {
  const go = (node: TensorTree): TensorTree => {
    if (node instanceof tf.Tensor) return fn(node);
    if (Array.isArray(node)) return node.map(go);
    if (node !== null && typeof node === 'object') {
      const out: Record<string, TensorTree> = {};
      for (const [k, v] of Object.entries(node)) out[k] = go(v as TensorTree);
      return out;
    }
    return node;
  };
  return go(tree) as T;
}

/** Applies `fn` name by name to two maps with the same names (params and grads, say). */
export function zipNamed(a: NamedTensors, b: NamedTensors, fn: (x: tf.Tensor, y: tf.Tensor, name: string) => tf.Tensor): NamedTensors {
  const out: NamedTensors = {};
  for (const name of Object.keys(a)) {
    const y = b[name];
    if (y === undefined) throw new Error(`no tensor named "${name}" (have: ${Object.keys(b).join(', ')})`);
    out[name] = fn(a[name]!, y, name);
  }
  return out;
}

/** Total number of scalar entries: the number of coordinates a coordinatewise optimizer handles. */
export function countCoordinates(tensors: NamedTensors): number {
  let n = 0;
  for (const t of Object.values(tensors)) n += t.size;
  return n;
}

/** Deep copies (`tf.clone`) so the caller owns the result. */
export function cloneNamed(tensors: NamedTensors): NamedTensors {
  const out: NamedTensors = {};
  for (const [k, v] of Object.entries(tensors)) out[k] = tf.clone(v);
  return out;
}

/** `tf.tidy` typed for trees: keeps every tensor of the returned tree, frees the rest. */
export function tidyTree<T extends TensorTree>(fn: () => T): T {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as T;
}
