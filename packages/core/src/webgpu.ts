/*
 * WebGPU in Node for tfjs's webgpu backend: Dawn's Node bindings (npm `webgpu`) exposed as `navigator.gpu`,
 * which @tensorflow/tfjs-backend-webgpu looks for when it is imported. Where no GPU adapter exists (a machine
 * without a GPU, CI), Dawn's OpenGL ES backend on Mesa's llvmpipe gives a software device, in WebGPU's
 * compatibility mode: slow, but it runs the same programs, so the GPU path can be tested anywhere.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import type { ModuleLoader } from './backend';

/** The device the webgpu backend runs on. */
export interface WebGpuDevice {
  /** The adapter's description (vendor, device, driver), as Dawn reports it. */
  readonly description: string;
  /** True for a software rasteriser (llvmpipe, lavapipe, SwiftShader): correct, far slower than a GPU. */
  readonly software: boolean;
  /** Dawn's backend flags in use (`backend=opengles` for the software fallback), or [] for Dawn's default. */
  readonly flags: readonly string[];
}

/** Environment variable with Dawn flags (space-separated, `backend=vulkan` say); set, it disables the fallback. */
export const DAWN_FLAGS_ENV = 'L2L_DAWN_FLAGS';

interface GpuLike {
  requestAdapter(options?: Record<string, unknown>): Promise<AdapterLike | null>;
}
interface AdapterLike {
  readonly isFallbackAdapter?: boolean;
  readonly info?: { vendor?: string; architecture?: string; device?: string; description?: string };
}
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

function describe(adapter: AdapterLike): { description: string; software: boolean } {
  const info = adapter.info ?? {};
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s): s is string => !!s && s.trim() !== '');
  const description = [...new Set(parts)].join(', ') || 'unknown adapter';
  return { description, software: adapter.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader|software/i.test(description) };
}

let current: WebGpuDevice | undefined;

/** Dawn loaded but found no adapter: the packages are installed, the machine lacks a device (or Mesa's EGL). */
export class NoWebGpuAdapter extends Error {}

/**
 * The `webgpu` package is an ES module. Node's own require loads it (from 20.19); a loader that cannot (jest's
 * module registry) gets it from Node's. Dawn shares nothing with tfjs, so which registry holds it does not matter.
 */
function loadDawn(load: ModuleLoader): DawnModule {
  try {
    return load('webgpu') as DawnModule;
  } catch (e) {
    const message = (e as Error).message ?? '';
    if ((e as { code?: string }).code !== 'ERR_REQUIRE_ESM' && !/import statement outside a module/.test(message)) throw e;
    // process.getBuiltinModule (Node 20.16+) gives Node's own `module`, which jest does not replace.
    const nodeModule = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule?.('node:module') as typeof import('node:module') | undefined;
    return (nodeModule ?? { createRequire }).createRequire(__filename)('webgpu') as DawnModule;
  }
}

/** The device `setUpWebGpu` chose in this process, if any. */
export function webGpuDevice(): WebGpuDevice | undefined {
  return current;
}

/**
 * Makes `navigator.gpu` a Dawn GPU with an adapter, before tfjs's webgpu backend is imported: Dawn's default
 * backend first (Vulkan on Linux, with a GPU), then, when that finds no adapter and no flags were given, OpenGL
 * ES in compatibility mode (Mesa's software rasteriser). A `navigator.gpu` already there (a browser, or one the
 * caller set up) is used as it is. Throws an Error that says what is missing.
 */
export async function setUpWebGpu(load: ModuleLoader): Promise<WebGpuDevice> {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  if (nav?.gpu && !current) {
    const adapter = await nav.gpu.requestAdapter();
    if (!adapter) throw new Error('navigator.gpu has no adapter');
    current = { ...describe(adapter), flags: [] };
    return current;
  }
  if (current) return current;
  let dawn: DawnModule;
  try {
    dawn = loadDawn(load);
  } catch (e) {
    throw new Error(`webgpu (Dawn's Node bindings): ${((e as Error).message ?? String(e)).split('\n')[0]}`);
  }
  if (typeof dawn?.create !== 'function') throw new Error('webgpu: the package has no create() (Dawn\'s Node bindings 0.6 or later are needed)');
  // GPUBufferUsage, GPUMapMode, ...: tfjs reads them as globals, as in a browser.
  Object.assign(globalThis, dawn.globals);
  const given = (process.env[DAWN_FLAGS_ENV] ?? '').split(/\s+/).filter(Boolean);
  const attempts: Array<{ flags: string[]; options: Record<string, unknown> }> = [{ flags: given, options: { powerPreference: 'high-performance' } }];
  if (given.length === 0) {
    // Mesa's EGL without a display; Dawn's GL backends need WebGPU's compatibility mode.
    process.env.EGL_PLATFORM ??= 'surfaceless';
    attempts.push({ flags: ['backend=opengles'], options: { featureLevel: 'compatibility' } });
  }
  const tried: string[] = [];
  for (const { flags, options } of attempts) {
    const gpu = dawn.create(flags);
    let adapter: AdapterLike | null = null;
    try {
      adapter = await gpu.requestAdapter(options);
    } catch (e) {
      tried.push(`${flags.join(' ') || 'default'}: ${(e as Error).message}`);
      continue;
    }
    if (!adapter) {
      tried.push(`${flags.join(' ') || 'default'}: no adapter`);
      continue;
    }
    // tfjs asks for its adapter itself: in compatibility mode when that is what found one.
    const request = gpu.requestAdapter.bind(gpu);
    const wrapped: GpuLike = { requestAdapter: (o) => request({ ...(o ?? {}), ...(options.featureLevel ? { featureLevel: options.featureLevel } : {}) }) };
    const navigator = (globalThis as { navigator?: object }).navigator;
    // Node 20 has no navigator; later versions have one without gpu.
    if (navigator) Object.defineProperty(navigator, 'gpu', { value: wrapped, configurable: true });
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu: wrapped }, configurable: true, writable: true });
    current = { ...describe(adapter), flags };
    return current;
  }
  throw new NoWebGpuAdapter(
    given.length > 0
      ? `Dawn found no WebGPU adapter with ${DAWN_FLAGS_ENV}="${given.join(' ')}" (${tried.join('; ')}); unset it to let Dawn choose, with Mesa's software device as the fallback`
      : `Dawn found no WebGPU adapter (${tried.join('; ')}); on Linux without a GPU, install Mesa's EGL and llvmpipe (apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri) for a software device`,
  );
}

interface WebGpuBackendLike {
  readonly device: {
    readonly limits: { readonly maxStorageBuffersPerShaderStage: number };
    addEventListener(type: 'uncapturederror', listener: (event: { error: { message: string } }) => void): void;
    readonly lost?: Promise<{ message?: string; reason?: string }>;
  };
  read(dataId: object): Promise<unknown>;
  readSync(dataId: object): unknown;
}

/** A GPU error tfjs does not see (Dawn reports them as events): reads after it would return garbage, so they throw this. */
export class WebGpuDeviceError extends Error {}

/**
 * tfjs 4.22's webgpu AddN binds every input as a storage buffer, past the device's per-stage limit (8 by
 * default) beyond 7 inputs: the GPU then refuses the program and the sum reads as zeros, with no exception
 * (a 20-step unroll's summed losses did). This AddN sums at most limit − 1 inputs per program, as tfjs's
 * own concat does.
 */
function chunkedAddN(original: (args: tf.NamedTensorInfoMap | object) => tf.TensorInfo | tf.TensorInfo[]): tf.KernelFunc {
  const addN: tf.KernelFunc = (args) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const backend = args.backend as unknown as WebGpuBackendLike & { disposeData(dataId: object): void };
    const most = backend.device.limits.maxStorageBuffersPerShaderStage - 1;
    if (inputs.length <= most) return original(args);
    const partial: tf.TensorInfo[] = [];
    for (let i = 0; i < inputs.length; i += most) partial.push(original({ ...args, inputs: inputs.slice(i, i + most) }) as tf.TensorInfo);
    const sum = addN({ ...args, inputs: partial as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
    for (const p of partial) backend.disposeData(p.dataId);
    return sum;
  };
  return addN;
}

type KernelCall = (args: { inputs: object; backend: unknown; attrs?: object }) => tf.TensorInfo;
const kernel = (name: string) => tf.getKernel(name, 'webgpu')!.kernelFunc as unknown as KernelCall;

/**
 * tfjs 4.22's webgpu BatchMatMul dispatches one workgroup row per matrix of the batch, so more than the device's
 * maxComputeWorkgroupsPerDimension (65,535) matrices throw "Dispatch size exceeds WebGPU limits" (Q at
 * 100,000 quadratics did). This one multiplies such batches in slices of at most that many matrices: each
 * product is computed as before, only in more programs.
 */
function chunkedBatchMatMul(original: KernelCall): tf.KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const backend = args.backend as unknown as { device: { limits: { maxComputeWorkgroupsPerDimension: number } }; disposeData(dataId: object): void };
    const most = backend.device.limits.maxComputeWorkgroupsPerDimension;
    const outer = (t: tf.TensorInfo) => t.shape.slice(0, -2);
    const count = (t: tf.TensorInfo) => outer(t).reduce((p, d) => p * d, 1);
    const batch = Math.max(count(a), count(b));
    // Only batches that are equal or a single matrix on one side; other broadcasts go to tfjs as before.
    const sameOuter = tf.util.arraysEqual(outer(a), outer(b));
    if (batch <= most || !(sameOuter || count(a) === 1 || count(b) === 1)) return original(args as Parameters<KernelCall>[0]);
    const temporary: tf.TensorInfo[] = [];
    const keep = (t: tf.TensorInfo) => (temporary.push(t), t);
    const as3d = (t: tf.TensorInfo) => keep(kernel(tf.Reshape)({ inputs: { x: t }, backend, attrs: { shape: [count(t), ...t.shape.slice(-2)] } }));
    const [a3, b3] = [as3d(a), as3d(b)];
    const rows = (t: tf.TensorInfo, start: number, size: number) =>
      t.shape[0] === 1 ? t : keep(kernel(tf.Slice)({ inputs: { x: t }, backend, attrs: { begin: [start, 0, 0], size: [size, t.shape[1]!, t.shape[2]!] } }));
    const parts: tf.TensorInfo[] = [];
    for (let start = 0; start < batch; start += most) {
      const size = Math.min(most, batch - start);
      parts.push(keep(original({ ...args, inputs: { a: rows(a3, start, size), b: rows(b3, start, size) } })));
    }
    const joined = keep(kernel(tf.Concat)({ inputs: parts, backend, attrs: { axis: 0 } }));
    const outerShape = count(a) >= count(b) ? outer(a) : outer(b);
    const out = kernel(tf.Reshape)({ inputs: { x: joined }, backend, attrs: { shape: [...outerShape, ...joined.shape.slice(-2)] } });
    for (const t of temporary) backend.disposeData(t.dataId);
    return out;
  };
}

/** Replaces tfjs-webgpu's AddN and BatchMatMul (after its package registered its kernels) with the chunked ones; idempotent. */
export function registerWebGpuKernels(): void {
  const replacements: Array<[string, (original: KernelCall) => tf.KernelFunc]> = [
    [tf.AddN, (original) => chunkedAddN(original as Parameters<typeof chunkedAddN>[0])],
    [tf.BatchMatMul, chunkedBatchMatMul],
  ];
  for (const [name, wrap] of replacements) {
    const registered = tf.getKernel(name, 'webgpu');
    if (!registered || (registered.kernelFunc as { l2lChunked?: boolean }).l2lChunked) continue;
    const kernelFunc = Object.assign(wrap(registered.kernelFunc as unknown as KernelCall), { l2lChunked: true });
    tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel({ kernelName: name, backendName: 'webgpu', kernelFunc });
  }
}

const watched = new WeakSet<object>();

/**
 * Makes the webgpu backend in use fail loudly: Dawn reports a refused program or a lost device as an event,
 * and tfjs reads the unwritten buffers as numbers. After the first such error every read of this backend
 * throws a WebGpuDeviceError that quotes it.
 */
export function watchWebGpuDevice(backend: WebGpuBackendLike): void {
  if (watched.has(backend)) return;
  watched.add(backend);
  let fault: string | undefined;
  const note = (what: string) => (fault ??= what.split('\n')[0]!.trim());
  backend.device.addEventListener('uncapturederror', (event) => note(event.error.message));
  // 'destroyed' is tfjs disposing its backend on purpose; any other loss (a driver reset, say) is a fault.
  void backend.device.lost?.then((info) => info.reason !== 'destroyed' && note(`device lost (${info.reason ?? 'unknown'}): ${info.message ?? ''}`));
  const failure = () => new WebGpuDeviceError(`webgpu: the GPU refused work, so results computed since are wrong: ${fault}`);
  const read = backend.read.bind(backend);
  const readSync = backend.readSync.bind(backend);
  backend.read = async (dataId) => {
    const value = await read(dataId);
    if (fault !== undefined) throw failure();
    return value;
  };
  backend.readSync = (dataId) => {
    if (fault !== undefined) throw failure();
    return readSync(dataId);
  };
}
