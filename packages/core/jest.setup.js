// Jest only: silence tfjs's warnings (its "install the node backend" banner, printed once per test file that
// touches the cpu backend). PROD only silences warnings; IS_TEST would also turn on a kernel leak checker
// that misreads tensors saved by custom gradients as leaks.
require('@tensorflow/tfjs-core').env().set('PROD', true);
