/*
 * One TS packet's 64-bit hash, and the running digest of packets in order: the generator (udp-source.c) and the
 * sinks (udp-sink.c) keep the same digests, so that a report can say whether an output is byte-identical to its
 * input. Included by both.
 */
#ifndef TS_DIGEST_H
#define TS_DIGEST_H
#include <stdint.h>
#include <string.h>

static uint64_t mix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}
static uint64_t packet_hash(const unsigned char *p) {
  uint64_t h = 0x243f6a8885a308d3ull, w;
  for (int i = 0; i < 184; i += 8) {
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  uint32_t tail;
  memcpy(&tail, p + 184, 4);
  return mix64(h ^ tail);
}
static uint64_t digest_next(uint64_t digest, uint64_t hash) {
  return ((digest << 7) | (digest >> 57)) * 0x100000001b3ull ^ hash;
}

#endif
