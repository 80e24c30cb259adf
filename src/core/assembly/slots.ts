// What the two redundancy cores (merge.ts and fec.ts, each its own module) share: the region the host
// writes a datagram into, the status struct's place, the layout exports the host checks
// (src/core/redundancy-core.ts mirrors them) and the first look at an RTP datagram.

export const INPUT: usize = 0x10000;
export const SLOT_SIZE: u32 = 2048;
export const STATUS: usize = 0x10800;
export const STATUS_SIZE: u32 = 256;

export const E_NOT_RTP: i32 = -1;
export const E_TOO_LONG: i32 = -2;

export function inputAddress(): usize {
  return INPUT;
}
export function inputCapacity(): u32 {
  return SLOT_SIZE;
}
export function statusAddress(): usize {
  return STATUS;
}

export function bump(addr: usize): void {
  store<u32>(addr, load<u32>(addr) + 1);
}

// 0 when the datagram of `length` bytes at INPUT fits a slot and is RTP version 2 with a whole fixed header;
// otherwise counts it (at tooLong or notRtp) and returns E_TOO_LONG or E_NOT_RTP.
export function checkRtp(length: i32, tooLong: usize, notRtp: usize): i32 {
  if (<u32>length > SLOT_SIZE) {
    bump(tooLong);
    return E_TOO_LONG;
  }
  if (length < 12 || (load<u8>(INPUT) & 0xc0) != 0x80) {
    bump(notRtp);
    return E_NOT_RTP;
  }
  return 0;
}
