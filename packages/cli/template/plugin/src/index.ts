import { definePlugin } from '@l2l/core';
import { signSgd } from './baseline';
import { scaledMomentum } from './learned-optimizer';
import { parabolasFamily } from './task-family';

export { parabolasFamily, scaledMomentum, signSgd };

export default definePlugin({
  name: 'l2l-plugin-example',
  description: 'A task family, a baseline and a learned optimizer',
  components: [parabolasFamily, signSgd, scaledMomentum],
});
