/**
 * CRC-32/MPEG-2: polynomial 0x04C11DB7, MSB first, initial value 0xFFFFFFFF, no reflection, no final XOR.
 * This is the CRC that closes every PSI section (PAT, PMT, SCTE 35); running it over a whole section including
 * its CRC_32 field gives 0 when the section is intact.
 */
const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n << 24;
    for (let bit = 0; bit < 8; bit++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC of `bytes[start, end)`, as an unsigned 32-bit number. */
export const crc32Mpeg2 = (bytes: Uint8Array, start = 0, end: number = bytes.length): number => {
  let crc = 0xffffffff;
  const stop = Math.min(end, bytes.length);
  for (let i = start; i < stop; i++) {
    crc = (crc << 8) ^ (TABLE[((crc >>> 24) ^ (bytes[i] ?? 0)) & 0xff] ?? 0);
  }
  return crc >>> 0;
};
