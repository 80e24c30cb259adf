/**
 * Loading the WebAssembly cores built by `npm run build:core` (src/core/build): each module is read and
 * compiled once, on first use, and every instance made from it has its own memory.
 */
import { readFileSync } from "node:fs";

// The project's type libraries (es2024, node) do not declare WebAssembly; these are the parts used here.
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: object };
}
const wasm = (globalThis as unknown as { readonly WebAssembly: WasmApi }).WebAssembly;

/** The exports every core has, so that its host can check the fixed addresses it mirrors. */
export interface CoreLayout {
  readonly memory: WasmMemory;
  readonly inputAddress: () => number;
  readonly inputCapacity: () => number;
  readonly statusAddress: () => number;
  readonly memoryEnd: () => number;
}

const compiled = new Map<string, object>();
/** Instances made ahead of need (`prepareInstances`), per module, taken before any new one is made. */
const spares = new Map<string, Array<object>>();

/**
 * A new instance of build/`name`.wasm, compiled on first use. `what` names the core in the error thrown when
 * the module has not been built.
 */
export const instantiate = (name: string, what: string): object => {
  const spare = spares.get(name)?.pop();
  if (spare !== undefined) return spare;
  return newInstance(name, what);
};

/**
 * Keeps `count` instances of build/`name`.wasm made and unused, for `instantiate` to hand out (0 lets go of
 * those left). Each has a memory of its own (the packet core's is 1.9 MB), which V8 counts toward its next
 * full collection: a thread about to take many channels at once makes their memories first, while none of
 * them is on air for a collection's pause to silence.
 */
export const prepareInstances = (name: string, what: string, count: number): void => {
  const ready = spares.get(name) ?? [];
  spares.set(name, ready);
  ready.length = Math.min(ready.length, count);
  while (ready.length < count) ready.push(newInstance(name, what));
};

/** How many instances of build/`name`.wasm wait unused. */
export const waitingInstances = (name: string): number => spares.get(name)?.length ?? 0;

const newInstance = (name: string, what: string): object => {
  let module = compiled.get(name);
  if (module === undefined) {
    const url = new URL(`./build/${name}.wasm`, import.meta.url);
    let bytes: Buffer;
    try {
      bytes = readFileSync(url);
    } catch (cause) {
      throw new Error(`${what} not built: ${url.pathname} is missing (run npm run build:core)`, {
        cause,
      });
    }
    module = new wasm.Module(bytes);
    compiled.set(name, module);
  }
  return new wasm.Instance(module, {}).exports;
};

/** Throws `message` unless the module's input region and status struct sit where its host expects them. */
export const checkLayout = (
  exports: CoreLayout,
  expected: { readonly input: number; readonly inputCapacity: number; readonly status: number },
  message: string,
): void => {
  if (
    exports.inputAddress() !== expected.input ||
    exports.inputCapacity() !== expected.inputCapacity ||
    exports.statusAddress() !== expected.status ||
    exports.memoryEnd() > exports.memory.buffer.byteLength
  ) {
    throw new Error(message);
  }
};
