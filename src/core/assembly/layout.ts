// Fixed regions of linear memory shared with the host: the build turns every constant here into
// src/core/build/layout.ts (scripts/core-layout.ts), which src/core/packet-core.ts reads.
// They sit above the first page, which holds the compiler's static data (the CRC table), and the module
// starts with enough pages for all of them, so memory never grows.

export const INPUT: usize = 0x10000;
export const INPUT_CAPACITY: u32 = 0x10000;

// Status struct: 32-bit words, 64-bit counters as (low, high) word pairs, the clock as an f64.
export const STATUS: usize = 0x20000;
export const ST_LAST_STATUS: usize = STATUS + 0;
export const ST_PAYLOAD_OFFSET: usize = STATUS + 4;
export const ST_PAYLOAD_LENGTH: usize = STATUS + 8;
export const ST_INPUT_KIND: usize = STATUS + 12;
export const ST_DATAGRAMS: usize = STATUS + 16; // u64
export const ST_PACKETS: usize = STATUS + 24; // u64
export const ST_MALFORMED: usize = STATUS + 32; // not whole TS: rejected, never forwarded
export const ST_RTP_PAYLOAD_TYPE: usize = STATUS + 36; // -1 until the first RTP datagram
export const ST_RTP_SSRC: usize = STATUS + 40;
export const ST_RTP_LAST_SEQUENCE: usize = STATUS + 44; // -1 until the first RTP datagram
export const ST_RTP_LOST: usize = STATUS + 48;
export const ST_RTP_DUPLICATE: usize = STATUS + 52;
export const ST_RTP_REORDERED: usize = STATUS + 56;
export const ST_RTP_SSRC_CHANGES: usize = STATUS + 60;
export const ST_SYNC_LOCKED: usize = STATUS + 64;
export const ST_SYNC_LOSS: usize = STATUS + 68; // TR 101 290 1.1
export const ST_SYNC_BYTE_ERRORS: usize = STATUS + 72; // 1.2
export const ST_PAT_ERRORS: usize = STATUS + 76; // 1.3
export const ST_CC_ERRORS: usize = STATUS + 80; // 1.4
export const ST_PMT_ERRORS: usize = STATUS + 84; // 1.5
export const ST_PID_ERRORS: usize = STATUS + 88; // 1.6
export const ST_TRANSPORT_ERRORS: usize = STATUS + 92; // 2.1
export const ST_CRC_ERRORS: usize = STATUS + 96; // 2.2
export const ST_ADAPTATION_ERRORS: usize = STATUS + 100;
export const ST_SECTION_ERRORS: usize = STATUS + 104;
export const ST_EV_HEAD: usize = STATUS + 108; // written by the core
export const ST_EV_TAIL: usize = STATUS + 112; // written by the host
export const ST_EV_DROPPED: usize = STATUS + 116;
export const ST_PAT_VERSION: usize = STATUS + 120; // -1 until a PAT is applied
export const ST_TS_ID: usize = STATUS + 124;
export const ST_PAT_CRC: usize = STATUS + 128;
export const ST_SCTE35_SECTIONS: usize = STATUS + 132;
export const ST_NOW_MS: usize = STATUS + 136; // f64, -1 without a clock
// Datagrams rejected for another reason than not being whole TS (ST_MALFORMED), never forwarded:
export const ST_REJECT_OTHER_KIND: usize = STATUS + 144; // plain TS on an RTP input, or RTP on a plain TS input
export const ST_REJECT_SSRC: usize = STATUS + 148; // RTP from another SSRC than the locked one
export const ST_REJECT_PAYLOAD_TYPE: usize = STATUS + 152; // RTP with a payload type other than 33 (MP2T)
export const ST_REJECT_SENDER: usize = STATUS + 156; // from an address outside the input's allow-list (host)
export const ST_RTP_RESTARTS: usize = STATUS + 160; // same SSRC, new sequence accepted after probation
export const ST_REJECT_OWN_OUTPUT: usize = STATUS + 164; // sent by one of the service's own outputs (host)
// The last pushMany: datagrams accepted, TS bytes in RX_OUT, and 1 when every accepted payload is a whole
// number of 7-packet datagrams (the outputs then send the run as it is).
export const ST_RUN_ACCEPTED: usize = STATUS + 168;
export const ST_RUN_BYTES: usize = STATUS + 172;
export const ST_RUN_UNIFORM: usize = STATUS + 176;
// The sender the host let in last, as the first 24 bytes of its sockaddr: pushMany takes its datagrams
// without asking (six words; all zero until the host trusts one).
export const ST_SENDER: usize = STATUS + 180;
// TR 101 290 second priority, measured on the push's clock (timing.ts); 2.1 and 2.2 are counted above.
export const ST_PCR_REPETITION_ERRORS: usize = STATUS + 204; // 2.3a
export const ST_PCR_DISCONTINUITY_ERRORS: usize = STATUS + 208; // 2.3b
export const ST_PTS_ERRORS: usize = STATUS + 212; // 2.5
export const ST_LAST_PCR_MS: usize = STATUS + 216; // f64, the last PCR's arrival on any PID, plus one (0 never)
export const STATUS_SIZE: u32 = 256;

// Programs from the PAT, with what their PMT said.
export const PROGRAMS: usize = 0x20100;
export const MAX_PROGRAMS: u32 = 64;
export const PROGRAM_STRIDE: u32 = 32;
export const PG_IN_USE: usize = 0;
export const PG_NUMBER: usize = 4;
export const PG_PMT_PID: usize = 8;
export const PG_PCR_PID: usize = 12; // 0x1FFF until a PMT is applied
export const PG_VERSION: usize = 16; // -1 until a PMT is applied
export const PG_CRC: usize = 20;
export const PG_LAST_PMT_MS: usize = 24; // f64

// PIDs listed in some PMT whose absence is a PID error (TR 101 290 1.6).
export const REFERENCED: usize = 0x20900;
export const MAX_REFERENCED: u32 = 512;

// RTP receive window: one bit per sequence number modulo its size, to tell a duplicate from a late packet.
export const RTP_WINDOW: usize = 0x20d00;
export const RTP_WINDOW_BITS: u32 = 1024;

// One bit per PID whose entry has ever been written (pid-fields.ts). Whatever walks the PIDs reads these
// 1 KiB instead of the 512 KiB table: on a kernel without a shared zero page (some VMs), merely reading an
// untouched page makes it resident, and a PMT that walked the table did so in every core.
export const PID_SEEN: usize = 0x21000;

export const EVENTS: usize = 0x22000;
export const EVENTS_SIZE: u32 = 0x20000; // a power of two: head and tail are free-running u32 counters

export const PIDS: usize = 0x42000;
export const PID_COUNT: u32 = 8192;
export const PID_STRIDE: u32 = 64;
export const PD_PACKETS: usize = 0; // u64
export const PD_PAYLOAD_BYTES: usize = 8; // u64
export const PD_LAST_PCR: usize = 16; // f64, 27 MHz units, valid with F_HAS_PCR
export const PD_CC_ERRORS: usize = 24;
export const PD_RANDOM_ACCESS: usize = 28;
export const PD_DISCONTINUITIES: usize = 32;
export const PD_ADAPTATION_ERRORS: usize = 36;
export const PD_LAST_SEEN_MS: usize = 40; // f64
export const PD_CC_STATE: usize = 48; // bits 0-3 last CC, bit 4 set once seen, bit 8 once that CC was repeated
export const PD_FLAGS: usize = 52; // bits 0-7 F_*, bits 8-15 stream_type, bits 16-23 program slot (0xFF none)
export const PD_SLOT: usize = 56; // section slot, 0xFFFF none
export const PD_SCRAMBLED: usize = 60;

export const F_PMT: u32 = 1;
export const F_SCTE35: u32 = 2;
export const F_REFERENCED: u32 = 4;
export const F_HAS_PCR: u32 = 8;
export const F_SECTIONS: u32 = 16; // PAT, PMT or SCTE-35: reassemble sections
export const NO_PROGRAM: u32 = 0xff;
export const NO_SLOT: u32 = 0xffff;

// Section reassembly slots, one per PID that carries sections.
export const SLOTS: usize = 0xc2000;
export const MAX_SLOTS: u32 = 64;
export const SLOT_STRIDE: u32 = 4352;
export const SL_PID: usize = 0; // NO_SLOT when free
export const SL_HAVE: usize = 4;
export const SL_NEED: usize = 8; // 0 until the 3-byte section header is in
export const SL_HAS_LAST: usize = 12;
export const SL_LAST_PACKET: usize = 64; // the previous packet, to tell a true duplicate from a same-CC rewrite
export const SL_BUFFER: usize = 256;
export const SECTION_MAX: u32 = 4096;

// Reads in batches (pushMany): recvmmsg(2) writes up to RX_SLOTS datagrams straight into this region, with
// their senders and lengths in the struct mmsghdr array the host sets up once (64-bit Linux layout); the core
// checks them all in one call and copies each accepted TS payload after the one before it into RX_OUT, where
// the outputs take the whole run at once. The pages are touched only as datagrams land in them: a slot's
// datagram of 7 TS packets touches one page of its 8 KiB, so a core keeps about 100 KiB resident at most.
export const RX: usize = 0x110000;
export const RX_SLOTS: u32 = 16; // a read at a time: a busier socket is read again in the same turn
export const RX_HEADERS: usize = RX; // struct mmsghdr, 64 bytes each
export const RX_HEADER_BYTES: u32 = 64;
export const RX_MSG_FLAGS: usize = 48; // msg_flags inside a struct mmsghdr
export const RX_MSG_LEN: usize = 56; // msg_len
export const RX_IOVECS: usize = RX + 0x400; // struct iovec, 16 bytes each
export const RX_NAMES: usize = RX + 0x500; // a sockaddr_in or sockaddr_in6, 32 bytes of room each
export const RX_NAME_BYTES: u32 = 32;
export const RX_RESULTS: usize = RX + 0x700; // per slot: i32 status, u32 offset in RX_OUT, u32 length, u32 0
export const RX_DATA: usize = RX + 0x1000;
export const RX_SLOT_BYTES: u32 = 8192;
export const RX_OUT: usize = RX_DATA + <usize>(RX_SLOTS * RX_SLOT_BYTES);
export const MSG_TRUNC: u32 = 0x20;

// Arrival times and second-priority counts per PID (timing.ts), beside the PID table rather than in it: its
// 64-byte entries are full, and these are written only for packets with a PCR or a PES start. The f64 times
// are milliseconds plus one, so zero (a fresh page) means never.
export const TIMES: usize = RX_OUT + <usize>(RX_SLOTS * RX_SLOT_BYTES);
export const TM_STRIDE: u32 = 64;
export const TM_PCR_MS: usize = 0; // f64: the last PCR's arrival
export const TM_PES_MS: usize = 8; // f64: the last PES start's arrival
export const TM_PTS_MS: usize = 16; // f64: the last PES start with a PTS
export const TM_PTS: usize = 24; // f64: that PTS, 90 kHz
export const TM_PID_TIMER: usize = 32; // f64: since when a listed PID's absence is timed (listed, or its last PID error)
export const TM_PCR_REPETITION: usize = 40; // u32
export const TM_PCR_DISCONTINUITY: usize = 44; // u32
export const TM_PTS_ERRORS: usize = 48; // u32

export const MEMORY_END: usize = TIMES + <usize>(PID_COUNT * TM_STRIDE);

export const KIND_UNKNOWN: u32 = 0;
export const KIND_RTP: u32 = 1;
export const KIND_UDP_TS: u32 = 2;

// Status codes returned by push; the host names them in CoreStatus.
export const E_TOO_SHORT: i32 = -1;
export const E_TOO_LONG: i32 = -2;
export const E_UNKNOWN_FORMAT: i32 = -3;
export const E_RTP_CSRC: i32 = -4;
export const E_RTP_EXTENSION: i32 = -5;
export const E_RTP_PADDING: i32 = -6;
export const E_TS_LENGTH: i32 = -7;
export const E_SYNC: i32 = -8;
export const E_OTHER_KIND: i32 = -9;
export const E_FOREIGN_SSRC: i32 = -10;
export const E_PAYLOAD_TYPE: i32 = -11;
export const E_SENDER: i32 = -12;
export const E_OWN_OUTPUT: i32 = -13;
export const E_RTP_DUPLICATE: i32 = -14;

// RTP payload type of MPEG-2 TS (RFC 3551); an RTP input takes no other.
export const RTP_PAYLOAD_MP2T: u32 = 33;
// How long the locked input kind or SSRC must be silent before another is taken, until the host configures it.
export const DEFAULT_LOCK_SILENCE_MS: f64 = 500;

// Event record types (header: u32 type, u32 size, f64 clock).
export const EV_PAD: u32 = 0;
export const EV_PAT: u32 = 1;
export const EV_PMT: u32 = 2;
export const EV_SCTE35: u32 = 3;
export const EV_CC_ERROR: u32 = 4;
export const EV_SYNC: u32 = 5;
export const EV_INPUT_KIND: u32 = 6;
export const EV_RTP_PAYLOAD_TYPE: u32 = 7;
export const EV_TR101290: u32 = 8;
export const EV_CRC_ERROR: u32 = 9;

export const IND_PAT_ERROR: u32 = 3;
export const IND_PMT_ERROR: u32 = 5;
export const IND_PID_ERROR: u32 = 6;
// Second priority, numbered 2x after their section in TR 101 290 (2.3a and 2.3b as 23 and 24).
export const IND_TRANSPORT_ERROR: u32 = 21;
export const IND_PCR_REPETITION_ERROR: u32 = 23;
export const IND_PCR_DISCONTINUITY_ERROR: u32 = 24;
export const IND_PTS_ERROR: u32 = 25;

export const PSI_INTERVAL_MS: f64 = 500;
export const PID_TIMEOUT_MS: f64 = 5000;
export const TICK_MS: f64 = 100;
// PCR_repetition_error over this interval (2.3a), until the host asks for DVB's 40 ms; a PCR jump over
// PCR_JUMP_MS or backwards is a PCR_discontinuity_indicator_error (2.3b) unless flagged; PTS_error over 700 ms (2.5).
export const PCR_REPETITION_MS: f64 = 100;
export const PCR_REPETITION_DVB_MS: f64 = 40;
export const PCR_JUMP_MS: f64 = 100;
export const PTS_INTERVAL_MS: f64 = 700;

export function bump(addr: usize): void {
  store<u32>(addr, load<u32>(addr) + 1);
}

export function pidEntry(pid: u32): usize {
  return PIDS + ((<usize>pid) << 6);
}

export function timesAt(pid: u32): usize {
  return TIMES + ((<usize>pid) << 6);
}

export function slotAt(slot: u32): usize {
  return SLOTS + <usize>(slot * SLOT_STRIDE);
}

export function programAt(index: u32): usize {
  return PROGRAMS + <usize>(index * PROGRAM_STRIDE);
}

export function be16(p: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}

export function be32(p: usize): u32 {
  return bswap<u32>(load<u32>(p));
}
