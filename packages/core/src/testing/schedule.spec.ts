import { BUILTIN_SCHEDULES, defineComponent, definePlugin, type LearningRateSchedule } from '../index';
import { checkPlugin, checkSchedule } from './index';

/** A schedule component whose factor comes from `factor`. */
const schedule = (factor: (step: number, total: number) => number, name = 'under test') =>
  defineComponent<Record<string, never>>()({
    kind: 'schedule',
    type: 'spec-schedule',
    description: 'A schedule under test',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    create: (): LearningRateSchedule => ({ name, factor }),
  });

describe('checkSchedule', () => {
  it('passes the built-in schedules', async () => {
    for (const [type, make] of Object.entries(BUILTIN_SCHEDULES)) {
      await expect(checkSchedule({ ...schedule(() => 1), type, create: () => (make as () => LearningRateSchedule)() })).resolves.toBeUndefined();
    }
  });

  it('fails a factor that is negative, not finite, or not a pure function of (step, total)', async () => {
    await expect(checkSchedule(schedule((s) => 1 - s / 100))).rejects.toThrow(
      'checkSchedule(schedule "spec-schedule"): factor(5000, 10000) is -49: it must be a finite number ≥ 0',
    );
    await expect(checkSchedule(schedule((s, t) => (s === t ? NaN : 1)))).rejects.toThrow(/factor\(1, 1\) is NaN: it must be a finite number ≥ 0/);
    let calls = 0;
    await expect(checkSchedule(schedule(() => 0.5 ** (calls++ > 20 ? 1 : 0)))).rejects.toThrow(/gave 1 and then 0\.5 .*: it must depend only on its arguments/);
    await expect(checkSchedule(schedule(() => 1, ''))).rejects.toThrow(/the schedule needs a name/);
  });

  it('checkPlugin runs it on a plugin\'s schedules', async () => {
    await expect(checkPlugin(definePlugin({ name: 'p', components: [schedule(() => -1)] }))).rejects.toThrow(/checkSchedule\(schedule "spec-schedule"\): factor\(0, 1\) is -1/);
    await expect(checkPlugin(definePlugin({ name: 'p', components: [schedule(() => 1)] }))).resolves.toHaveLength(1);
  });
});
