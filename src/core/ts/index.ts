/**
 * The host-side MPEG-TS toolkit: packets and their adaptation field (packet.ts), PSI sections with their CRC,
 * reassembly (the one section reader every assembler uses) and packetizing (section.ts), a filter's output memory (packet-out.ts), PAT and PMT read,
 * written and rewritten (psi.ts), PES timestamps (pes.ts), stream types. Every host module reads and writes TS
 * through it; the AssemblyScript core (src/core/assembly/) keeps its own.
 */
export * from "./crc32.ts";
export * from "./packet.ts";
export * from "./packet-out.ts";
export * from "./pes.ts";
export * from "./psi.ts";
export * from "./section.ts";
export * from "./stream-types.ts";
