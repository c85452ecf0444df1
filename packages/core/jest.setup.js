// Jest only: silence tfjs's "install the node backend" banner, printed once per test file that touches the cpu backend.
require('@tensorflow/tfjs-core').env().set('IS_TEST', true);
