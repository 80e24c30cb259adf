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

/**
 * A new instance of build/`name`.wasm, compiled on first use. `what` names the core in the error thrown when
 * the module has not been built.
 */
export const instantiate = (name: string, what: string): object => {
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
