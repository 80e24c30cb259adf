import {
  bump,
  EV_PAD,
  EVENTS,
  EVENTS_SIZE,
  ST_EV_DROPPED,
  ST_EV_HEAD,
  ST_EV_TAIL,
  ST_NOW_MS,
} from "./layout";

export const EVENT_HEADER: u32 = 16;

// Reserves a record in the event ring and returns its address, or 0 when the ring is full: the event is
// dropped and counted, so a host that stops draining never blocks the packet path.
export function beginEvent(type: u32, payloadBytes: u32): usize {
  const size = (EVENT_HEADER + payloadBytes + 7) & ~7;
  let head = load<u32>(ST_EV_HEAD);
  const free = EVENTS_SIZE - (head - load<u32>(ST_EV_TAIL));
  let pos = head & (EVENTS_SIZE - 1);
  // A record never wraps; the tail of the ring is skipped with a pad record instead.
  const pad: u32 = pos + size > EVENTS_SIZE ? EVENTS_SIZE - pos : 0;
  if (size + pad > free) {
    bump(ST_EV_DROPPED);
    return 0;
  }
  if (pad != 0) {
    store<u32>(EVENTS + pos, EV_PAD);
    store<u32>(EVENTS + pos + 4, pad);
    head += pad;
    pos = 0;
  }
  const record = EVENTS + pos;
  store<u32>(record, type);
  store<u32>(record, size, 4);
  store<f64>(record, load<f64>(ST_NOW_MS), 8);
  store<u32>(ST_EV_HEAD, head + size);
  return record;
}

export function event1(type: u32, a: u32): void {
  const record = beginEvent(type, 4);
  if (record != 0) store<u32>(record, a, EVENT_HEADER);
}

export function event2(type: u32, a: u32, b: u32): void {
  const record = beginEvent(type, 8);
  if (record == 0) return;
  store<u32>(record, a, EVENT_HEADER);
  store<u32>(record, b, EVENT_HEADER + 4);
}

export function event3(type: u32, a: u32, b: u32, c: u32): void {
  const record = beginEvent(type, 12);
  if (record == 0) return;
  store<u32>(record, a, EVENT_HEADER);
  store<u32>(record, b, EVENT_HEADER + 4);
  store<u32>(record, c, EVENT_HEADER + 8);
}
