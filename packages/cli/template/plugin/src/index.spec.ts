import { checkPlugin } from '@l2l/core/testing';
import plugin from './index';

describe('l2l-plugin-example', () => {
  it('loads as a plugin whose components honour their contracts', async () => {
    const components = await checkPlugin(plugin, { components: { 'example-parabolas': { options: { dims: 3 } } } });
    expect(components.map((c) => `${c.kind}:${c.type}`).sort()).toEqual(['meta-optimizer:example-scaled-momentum', 'optimizee:example-parabolas', 'optimizer:example-sign-sgd']);
  });
});
