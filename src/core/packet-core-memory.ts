/**
 * How the host reads a packet core's memory: the typed views over it, made once per core so that a read
 * allocates nothing, and its fields read at the byte addresses build/layout.ts gives (generated from
 * assembly/layout.ts, so the host keeps no second table of them). The core (packet-core.ts), its events
 * (packet-core-events.ts) and its snapshot (packet-core-snapshot.ts) all read through these.
 */

export interface CoreMemory {
  readonly bytes: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
}

export const coreMemory = (buffer: ArrayBuffer): CoreMemory => ({
  bytes: new Uint8Array(buffer),
  u32: new Uint32Array(buffer),
  i32: new Int32Array(buffer),
  f64: new Float64Array(buffer),
});

/** The unsigned 32-bit field at `address`. */
export const u32At = (memory: CoreMemory, address: number): number => memory.u32[address >> 2] ?? 0;

/** The signed 32-bit field at `address` (the core writes -1 for "none yet"). */
export const i32At = (memory: CoreMemory, address: number): number => memory.i32[address >> 2] ?? -1;

/** The 64-bit counter at `address`, exact up to 2^53. */
export const u64At = (memory: CoreMemory, address: number): number =>
  u32At(memory, address) + u32At(memory, address + 4) * 0x1_0000_0000;

/** The f64 field at `address` (the core writes -1 for "none yet"). */
export const f64At = (memory: CoreMemory, address: number): number => memory.f64[address >> 3] ?? -1;
