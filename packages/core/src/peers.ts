/**
 * Checked before anything else loads: a missing peer dependency is one line that says what to install, not
 * Node's "Cannot find module" from deep inside a package.
 */
const PEERS: Record<string, string> = { '@tensorflow/tfjs-core': '4.22.0', inversify: '^7.11.0' };

const missing = Object.keys(PEERS).filter((name) => {
  try {
    require.resolve(name);
    return false;
  } catch {
    return true;
  }
});
if (missing.length > 0) {
  throw new Error(`@l2l/core needs ${missing.join(' and ')} installed beside it: npm install ${missing.map((n) => `${n}@${PEERS[n]}`).join(' ')}`);
}
export {};
