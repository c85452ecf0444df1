import type { LearningRateSchedule } from '../contracts/schedule';
import type { ComponentDefinition } from '../registry/component';
import { attempt, prepare, show, type CheckOptions } from './util';

/**
 * Smoke-tests a learning-rate schedule (kind `schedule`, contracts/schedule.ts); throws a `ContractError` naming it
 * and the broken rule. `create` gives a named schedule whose factor, for runs of 1, 10 and 10,000 outer steps and
 * steps up to twice the run, is a finite number ≥ 0 that depends only on (step, total): asked twice, in another
 * order or from another instance, it answers the same (what an exact --resume needs).
 */
export async function checkSchedule(definition: ComponentDefinition, opts: CheckOptions = {}): Promise<void> {
  const { fail, options, ctx } = prepare('checkSchedule', definition, 'schedule', opts);
  const build = () => attempt(fail, 'create', () => definition.create(options, ctx)) as LearningRateSchedule;
  const schedule = build();
  if (!schedule || typeof schedule.factor !== 'function') fail('create must return a LearningRateSchedule ({ name, factor(step, total) })');
  if (typeof schedule.name !== 'string' || !schedule.name) fail('the schedule needs a name (what l2l train prints)');
  const points: Array<[number, number]> = [];
  for (const total of [1, 10, 10_000]) {
    for (const step of new Set([0, 1, Math.floor(total / 2), total - 1, total, 2 * total])) points.push([step, total]);
  }
  const values = points.map(([step, total]) => {
    const f = attempt(fail, `factor(${step}, ${total})`, () => schedule.factor(step, total));
    if (typeof f !== 'number' || !Number.isFinite(f) || f < 0) fail(`factor(${step}, ${total}) is ${typeof f === 'number' ? String(f) : show(f)}: it must be a finite number ≥ 0`);
    return f;
  });
  const again = build();
  [...points.keys()].reverse().forEach((i) => {
    const [step, total] = points[i]!;
    const f = attempt(fail, `factor(${step}, ${total})`, () => again.factor(step, total));
    if (!Object.is(f, values[i])) fail(`factor(${step}, ${total}) gave ${values[i]} and then ${show(f)} (asked again, in another order, of another instance): it must depend only on its arguments`);
  });
}
