/** udp:// and rtp:// destinations: host, port, multicast TTL and the local address to send from. */
import { OutputError } from "../output-error.ts";
import { invalid, ipv4Octets, isMulticast, parseInteger, parsePort, readParams } from "./shared.ts";

export interface DatagramTarget {
  readonly protocol: "udp" | "rtp";
  readonly host: string;
  readonly port: number;
  readonly multicast: boolean;
  readonly ttl: number | null;
  /** Local address to send from; for multicast also the interface to send on. */
  readonly localAddress: string | null;
  readonly masked: string;
}

export const parseDatagram = (
  protocol: "udp" | "rtp",
  raw: string,
  url: URL,
): DatagramTarget | OutputError => {
  if (url.pathname !== "" && url.pathname !== "/") return invalid(`a ${protocol} URL has no path`);
  const port = parsePort(url.port, null);
  if (port instanceof OutputError) return port;
  const params = readParams(url, ["ttl", "localaddr"]);
  if (params instanceof OutputError) return params;
  const ttlText = params.get("ttl");
  const ttl = ttlText === undefined ? null : parseInteger("ttl", ttlText, 1, 255);
  if (ttl instanceof OutputError) return ttl;
  const localAddress = params.get("localaddr") ?? null;
  if (localAddress !== null && ipv4Octets(localAddress) === null) {
    return invalid(`localaddr must be an IPv4 address of this machine, got '${localAddress}'`);
  }
  return {
    protocol,
    host: url.hostname,
    port,
    multicast: isMulticast(url.hostname),
    ttl,
    localAddress,
    // Nothing in a datagram URL is secret: it is shown exactly as written.
    masked: raw,
  };
};
