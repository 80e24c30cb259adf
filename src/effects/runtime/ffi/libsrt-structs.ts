/**
 * The C side of the libsrt binding (libsrt.ts), for koffi: srt.h's struct layouts (SRT_TRACEBSTATS) and listener
 * callback prototype, and the sockaddr bytes libsrt takes and hands back. It declares and encodes; it calls
 * nothing of libsrt, which libsrt.ts alone does.
 */
import { isIPv6 } from "node:net";
import koffi from "koffi";
import { AF_INET, AF_INET6 } from "./libc.ts";
import { LibSrtError } from "./libsrt-api.ts";

// srt.h's srt_listen_callback_fn: the opaque pointer, the new socket, the handshake version, the caller's
// address and the stream id it sent.
export const ListenHook = koffi.proto(
  "int srt_listen_hook(void *opaque, int socket, int hsversion, const void *peer, const char *streamid)",
);

// struct CBytePerfMon, field for field as in srt.h of libsrt 1.5.1.
export const TraceBStats = koffi.struct("SRT_TRACEBSTATS", {
  msTimeStamp: "int64_t",
  pktSentTotal: "int64_t",
  pktRecvTotal: "int64_t",
  pktSndLossTotal: "int",
  pktRcvLossTotal: "int",
  pktRetransTotal: "int",
  pktSentACKTotal: "int",
  pktRecvACKTotal: "int",
  pktSentNAKTotal: "int",
  pktRecvNAKTotal: "int",
  usSndDurationTotal: "int64_t",
  pktSndDropTotal: "int",
  pktRcvDropTotal: "int",
  pktRcvUndecryptTotal: "int",
  byteSentTotal: "uint64_t",
  byteRecvTotal: "uint64_t",
  byteRcvLossTotal: "uint64_t",
  byteRetransTotal: "uint64_t",
  byteSndDropTotal: "uint64_t",
  byteRcvDropTotal: "uint64_t",
  byteRcvUndecryptTotal: "uint64_t",
  pktSent: "int64_t",
  pktRecv: "int64_t",
  pktSndLoss: "int",
  pktRcvLoss: "int",
  pktRetrans: "int",
  pktRcvRetrans: "int",
  pktSentACK: "int",
  pktRecvACK: "int",
  pktSentNAK: "int",
  pktRecvNAK: "int",
  mbpsSendRate: "double",
  mbpsRecvRate: "double",
  usSndDuration: "int64_t",
  pktReorderDistance: "int",
  pktRcvAvgBelatedTime: "double",
  pktRcvBelated: "int64_t",
  pktSndDrop: "int",
  pktRcvDrop: "int",
  pktRcvUndecrypt: "int",
  byteSent: "uint64_t",
  byteRecv: "uint64_t",
  byteRcvLoss: "uint64_t",
  byteRetrans: "uint64_t",
  byteSndDrop: "uint64_t",
  byteRcvDrop: "uint64_t",
  byteRcvUndecrypt: "uint64_t",
  usPktSndPeriod: "double",
  pktFlowWindow: "int",
  pktCongestionWindow: "int",
  pktFlightSize: "int",
  msRTT: "double",
  mbpsBandwidth: "double",
  byteAvailSndBuf: "int",
  byteAvailRcvBuf: "int",
  mbpsMaxBW: "double",
  byteMSS: "int",
  pktSndBuf: "int",
  byteSndBuf: "int",
  msSndBuf: "int",
  msSndTsbPdDelay: "int",
  pktRcvBuf: "int",
  byteRcvBuf: "int",
  msRcvBuf: "int",
  msRcvTsbPdDelay: "int",
  pktSndFilterExtraTotal: "int",
  pktRcvFilterExtraTotal: "int",
  pktRcvFilterSupplyTotal: "int",
  pktRcvFilterLossTotal: "int",
  pktSndFilterExtra: "int",
  pktRcvFilterExtra: "int",
  pktRcvFilterSupply: "int",
  pktRcvFilterLoss: "int",
  pktReorderTolerance: "int",
  pktSentUniqueTotal: "int64_t",
  pktRecvUniqueTotal: "int64_t",
  byteSentUniqueTotal: "uint64_t",
  byteRecvUniqueTotal: "uint64_t",
  pktSentUnique: "int64_t",
  pktRecvUnique: "int64_t",
  byteSentUnique: "uint64_t",
  byteRecvUnique: "uint64_t",
});

/** An IPv6 literal's 16 bytes (`::ffff:a.b.c.d` and a trailing dotted quad included), or null. */
const ipv6Bytes = (host: string): Buffer | null => {
  if (!isIPv6(host)) return null;
  const hex = host.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    [(Number(a) << 8) | Number(b), (Number(c) << 8) | Number(d)].map((group) => group.toString(16)).join(":"),
  );
  const parse = (part: string | undefined) =>
    part === undefined || part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16));
  const [head, tail] = hex.split("::");
  const front = parse(head);
  const back = parse(tail);
  const groups =
    tail === undefined
      ? front
      : [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  const bytes = Buffer.alloc(16);
  for (const [index, group] of groups.entries()) bytes.writeUInt16BE(group, index * 2);
  return bytes;
};

/**
 * A sockaddr_in for an IPv4 `host` and `port`, or a sockaddr_in6 (28 bytes) for an IPv6 one, as srt_bind and
 * srt_connect take them.
 */
export const sockaddrIn = (host: string, port: number): Buffer => {
  const v6 = ipv6Bytes(host);
  if (v6 !== null) {
    const address = Buffer.alloc(SOCKADDR_IN6_BYTES);
    address.writeUInt16LE(AF_INET6, 0);
    address.writeUInt16BE(port, 2);
    v6.copy(address, 8);
    return address;
  }
  const octets = host.split(".").map(Number);
  if (octets.length !== 4 || octets.some((octet) => !(octet >= 0 && octet <= 255))) {
    throw new LibSrtError("address", 0, `'${host}' is not an IPv4 or IPv6 address`);
  }
  const address = Buffer.alloc(16);
  address.writeUInt16LE(AF_INET, 0);
  address.writeUInt16BE(port, 2);
  for (const [index, octet] of octets.entries()) address[4 + index] = octet;
  return address;
};

const SOCKADDR_IN6_BYTES = 28;

/** A sockaddr's `address:port` from its bytes (IPv4; IPv6 in brackets, compressed), or "" for another family. */
export const sockaddrText = (bytes: ArrayLike<number>): string => {
  const family = (bytes[0] ?? 0) | ((bytes[1] ?? 0) << 8);
  const port = ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0);
  if (family === AF_INET) return `${bytes[4]}.${bytes[5]}.${bytes[6]}.${bytes[7]}:${port}`;
  if (family !== AF_INET6) return "";
  const words: string[] = [];
  for (let at = 8; at < 24; at += 2)
    words.push((((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0)).toString(16));
  // As people write it: the longest run of zero groups (two or more) as `::`.
  let best = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && words[start + length] === "0") length++;
    if (length > bestLength) [best, bestLength] = [start, length];
  }
  const text =
    best < 0
      ? words.join(":")
      : `${words.slice(0, best).join(":")}::${words.slice(best + bestLength).join(":")}`;
  return `[${text}]:${port}`;
};

/** A sockaddr's `address:port` (IPv4; IPv6 in brackets), or "" for another family. */
export const peerText = (peer: unknown): string => {
  if (peer === null || peer === undefined) return "";
  return sockaddrText(koffi.decode(peer, "uint8_t", 24) as ReadonlyArray<number>);
};
