import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer, OptimizerState } from '../contracts/optimizer';
import type { ComponentDefinition } from '../registry/component';
import type { NamedTensors, TensorTree } from '../tensor-tree';
import {
  attempt,
  checkFinite,
  checkSameStructure,
  checkUnchanged,
  disposeExcept,
  numTensors,
  prepare,
  show,
  snapshotNamed,
  snapshotTensor,
  deepEqual,
  tensorSet,
  testQuadratic,
  type CheckOptions,
  type Fail,
  type TensorSnapshot,
} from './util';

export interface OptimizerCheckOptions extends CheckOptions {
  /** Updates taken on the test quadratic (default 10). */
  steps?: number;
}

/**
 * Smoke-tests a hand-designed optimizer (kind `optimizer`) against the functional `Optimizer` contract;
 * throws a `ContractError` naming it and the broken rule. Checks: the options schema follows the registry's
 * rules; `init` and `update` keep parameter names, shapes and dtypes and count steps; neither changes nor
 * disposes its inputs; a few updates with the default options lower a simple quadratic's loss; a run whose
 * states are released with `disposeTree(old, next)` leaks no tensor.
 */
export async function checkOptimizer(definition: ComponentDefinition, opts: OptimizerCheckOptions = {}): Promise<void> {
  await tf.ready();
  const { fail, options, ctx } = prepare('checkOptimizer', definition, 'optimizer', opts);
  const before = numTensors();
  const optimizer = attempt(fail, 'create', () => definition.create(options, ctx)) as Optimizer;
  const { initial, final } = checkOptimizerRun(fail, optimizer, { steps: opts.steps ?? 10, training: false });
  if (!(final < initial)) {
    fail(`${opts.steps ?? 10} updates with options ${show(options)} did not lower a simple quadratic's loss (${initial} → ${final})`);
  }
  const left = numTensors() - before;
  if (left !== 0) fail(`the optimizer still holds ${left} tensor(s) after its run: an Optimizer has no dispose(), so create() must not allocate tensors it keeps`);
}

/**
 * Runs `steps` updates on a small quadratic, checking the contract at each one, then releases everything.
 * Returns the loss before and after. Shared with `checkMetaOptimizer` (whose optimizer is untrained).
 */
export function checkOptimizerRun(fail: Fail, optimizer: Optimizer, o: { steps: number; training: boolean }): { initial: number; final: number } {
  if (!optimizer || typeof optimizer.init !== 'function' || typeof optimizer.update !== 'function') {
    fail('expected an Optimizer (with init and update)');
  }
  if (typeof optimizer.name !== 'string' || !optimizer.name) fail(`optimizer.name must be a non-empty string, got ${show(optimizer.name)}`);
  const start = numTensors();
  const q = testQuadratic({ w: [3, 2], b: [4] });
  const params = q.init();
  const snapParams = snapshotNamed(params);
  const state0 = attempt(fail, 'init(params)', () => optimizer.init(params));
  checkState(fail, state0, params, 'init(params)');
  if (state0.step !== 0) fail(`init(params).step is ${show(state0.step)}, expected 0`);
  checkUnchanged(fail, params, snapParams, 'init(params)');

  const lossOf = (p: NamedTensors) => {
    const l = q.loss(p);
    const v = l.dataSync()[0]!;
    l.dispose();
    return v;
  };
  const initial = lossOf(state0.params);
  let state = state0;
  for (let k = 0; k < o.steps; k++) {
    const grads = q.grads(state.params);
    const loss = q.loss(state.params);
    const snaps = {
      params: snapshotNamed(state.params),
      grads: snapshotNamed(grads),
      slots: snapshotTree(state.slots),
    };
    const at = `update #${k + 1}`;
    const next = attempt(fail, at, () => optimizer.update(state, grads, { step: k, loss, training: o.training }));
    checkState(fail, next, params, at);
    if (next.step !== state.step + 1) fail(`${at}: step is ${show(next.step)}, expected ${state.step + 1} (state.step + 1)`);
    checkUnchanged(fail, state.params, snaps.params, `${at}: state.params`);
    checkUnchanged(fail, grads, snaps.grads, `${at}: grads`);
    const slotsNow = tensorsOf(state.slots);
    slotsNow.forEach((t, i) => {
      if (t.isDisposed) fail(`${at}: a tensor of the old state's slots was disposed (inputs belong to the caller)`);
      if (!deepEqual(snapshotTensor(t), snaps.slots[i])) fail(`${at}: the old state's slots were modified (update must return new tensors)`);
    });
    if (loss.isDisposed) fail(`${at}: ctx.loss was disposed (inputs belong to the caller)`);
    for (const [n, p] of Object.entries(next.params)) checkFinite(fail, p, `${at}: parameter "${n}"`);
    // Release the old state, as the engine does: keep what the new state shares, and the caller's params.
    const keep = tensorSet(next as unknown as TensorTree, params);
    disposeExcept(keep, state as unknown as TensorTree, grads, loss);
    state = next;
  }
  const final = lossOf(state.params);
  disposeExcept(new Set(), state as unknown as TensorTree, params);
  q.dispose();
  const left = numTensors() - start;
  if (left > 0) fail(`a run of ${o.steps} updates leaked ${left} tensor(s) (after disposing every state with disposeTree(old, next))`);
  return { initial, final };
}

function tensorsOf(tree: TensorTree): tf.Tensor[] {
  return [...tensorSet(tree)];
}

function snapshotTree(tree: TensorTree): TensorSnapshot[] {
  return tensorsOf(tree).map((t) => snapshotTensor(t));
}

function checkState(fail: Fail, state: OptimizerState, params: NamedTensors, at: string): void {
  if (!state || typeof state !== 'object') fail(`${at} must return a state { params, slots, step }, got ${show(state)}`);
  checkSameStructure(fail, params, state.params, `${at}: state.params`);
  if (typeof state.step !== 'number') fail(`${at}: state.step must be a number, got ${show(state.step)}`);
  for (const t of tensorsOf(state.slots)) if (t.isDisposed) fail(`${at}: state.slots holds a disposed tensor`);
}
