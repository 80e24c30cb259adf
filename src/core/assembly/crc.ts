// CRC-32/MPEG-2: polynomial 0x04C11DB7, initial 0xFFFFFFFF, not reflected, no final xor. Over a whole
// section including its trailing CRC_32 field the result is 0.
const CRC_TABLE: usize = memory.data(1024, 64);

export function initCrcTable(): void {
  for (let i: u32 = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = (c & 0x80000000) != 0 ? (c << 1) ^ 0x04c11db7 : c << 1;
    store<u32>(CRC_TABLE + ((<usize>i) << 2), c);
  }
}

export function crc32Mpeg2(p: usize, length: u32): u32 {
  let c: u32 = 0xffffffff;
  const end = p + <usize>length;
  while (p < end) {
    c = (c << 8) ^ load<u32>(CRC_TABLE + ((<usize>(((c >> 24) ^ <u32>load<u8>(p)) & 0xff)) << 2));
    p++;
  }
  return c;
}
