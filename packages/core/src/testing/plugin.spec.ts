import { defineComponent, definePlugin, useBackend } from '../index';
import { checkPlugin } from './index';

const badFamily = defineComponent<Record<string, never>>()({
  kind: 'optimizee',
  type: 'spec-broken',
  description: 'A family whose create throws',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  create: () => {
    throw new Error('boom');
  },
});

describe('checkPlugin', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('fails a value that is not a plugin', async () => {
    await expect(checkPlugin({ name: 'x' })).rejects.toThrow(/^checkPlugin\(plugin\): not an l2l plugin/);
  });

  it('fails a plugin that registers nothing', async () => {
    await expect(checkPlugin(definePlugin({ name: 'empty' }))).rejects.toThrow(/checkPlugin\("empty"\): registers no component/);
  });

  it('runs the check of each component', async () => {
    await expect(checkPlugin(definePlugin({ name: 'p', components: [badFamily] }))).rejects.toThrow(
      /checkTaskFamily\(optimizee "spec-broken"\): create threw: boom/,
    );
  });

  it('fails a component the registry rejects', async () => {
    const plugin = definePlugin({ name: 'p', components: [{ ...badFamily, type: 'Bad Name' }] });
    await expect(checkPlugin(plugin)).rejects.toThrow(/registering its components threw: .*type must be lower-case kebab-case/);
  });
});
