import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';

/** The kernel builds: `fma` uses relaxed-SIMD fused multiply-add, `simd` plain 128-bit SIMD. */
export type KernelVariant = 'fma' | 'simd';

/** Where the committed .wasm builds live (the same from src/ under jest and from dist/). */
export const WASM_DIR = path.resolve(__dirname, '../../wasm');

/** The bytes of `wasm/<source>.<variant>.wasm`. */
export function kernelBytes(source: string, variant: KernelVariant): Uint8Array {
  return fs.readFileSync(path.join(WASM_DIR, `${source}.${variant}.wasm`));
}

let relaxedSimd: boolean | undefined;

/**
 * True when this engine runs relaxed-SIMD modules. Node 20's V8 has them behind a flag, which can be set at run
 * time before a module is compiled (newer Node has them on); the answer is what `WebAssembly.validate` says of a
 * real build afterwards.
 */
export function relaxedSimdSupported(): boolean {
  if (relaxedSimd === undefined) {
    try {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // A V8 without the flag: validate decides.
    }
    try {
      relaxedSimd = WebAssembly.validate(kernelBytes('lstm-stack', 'fma'));
    } catch {
      relaxedSimd = false;
    }
  }
  return relaxedSimd;
}

/**
 * The variant to run: `fma` where the engine has relaxed SIMD, else `simd`. `L2L_KERNEL_VARIANT=simd` forces the
 * fallback (to compare the two).
 */
export function kernelVariant(): KernelVariant {
  const forced = process.env.L2L_KERNEL_VARIANT;
  if (forced === 'simd') return 'simd';
  if (forced === 'fma' && !relaxedSimdSupported()) throw new Error('L2L_KERNEL_VARIANT=fma, but this engine has no relaxed SIMD');
  return relaxedSimdSupported() ? 'fma' : 'simd';
}

/** True when this engine runs WebAssembly SIMD at all (every current Node does). */
export function wasmSimdSupported(): boolean {
  try {
    return WebAssembly.validate(kernelBytes('lstm-stack', 'simd'));
  } catch {
    return false;
  }
}

const modules = new Map<string, WebAssembly.Module>();

/** The compiled module of `source` in the variant this process runs (compiled once). */
export function kernelModule(source: string, variant: KernelVariant = kernelVariant()): WebAssembly.Module {
  const key = `${source}.${variant}`;
  let mod = modules.get(key);
  if (!mod) {
    mod = new WebAssembly.Module(kernelBytes(source, variant));
    modules.set(key, mod);
  }
  return mod;
}

/** First byte the host may use in a kernel's memory: the modules keep their constants below it. */
export const HOST_BASE = 65536;

/** A block of a kernel's memory: its byte offset and its length in floats. */
export interface Area {
  readonly ptr: number;
  readonly floats: number;
}

/** A bump allocator over a kernel's shared memory; grows the memory as needed. 64-byte aligned. */
export class KernelMemory {
  readonly memory: WebAssembly.Memory;
  private top = HOST_BASE;

  constructor() {
    // Shared: the builds import a shared memory so that worker threads can run on the same data.
    this.memory = new WebAssembly.Memory({ initial: 2, maximum: 65536, shared: true });
  }

  /** Forgets every allocation (the memory is kept for the next run). */
  reset(): void {
    this.top = HOST_BASE;
  }

  alloc(bytes: number): number {
    const at = this.top;
    this.top += Math.ceil(bytes / 64) * 64;
    const need = this.top - this.memory.buffer.byteLength;
    if (need > 0) {
      const pages = Math.ceil(need / 65536);
      if (this.top > 65536 * 65536) throw new RangeError(`fused kernel: ${(this.top / 2 ** 30).toFixed(1)} GiB exceeds WebAssembly's 4 GiB`);
      this.memory.grow(pages);
    }
    return at;
  }

  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }

  /** A new block of `floats` floats. */
  area(floats: number): Area {
    return { ptr: this.alloc(floats * 4), floats };
  }

  /** The floats of a block (a view: valid until the memory grows). */
  view(a: Area): Float32Array {
    return this.f32(a.ptr, a.floats);
  }

  /** Writes rows[t] at ptr + t·stride floats, zero-filling each row's padding up to `stride` (the kernels' tiles). */
  writePadded(ptr: number, rows: readonly Float32Array[], stride: number): void {
    const d = this.f32(ptr, rows.length * stride);
    rows.forEach((r, t) => {
      d.set(r, t * stride);
      d.fill(0, t * stride + r.length, (t + 1) * stride);
    });
  }
}
