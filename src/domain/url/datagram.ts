/** udp:// and rtp:// destinations: host, port, multicast TTL and the local address to send from. */

import { isIP } from "node:net";
import { OutputError } from "../channel/output-error.ts";
import { bareHost, invalid, isMulticast, parseInteger, parsePort, readParams } from "./shared.ts";

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
  const host = bareHost(url.hostname);
  const localText = params.get("localaddr") ?? null;
  const localAddress = localText === null ? null : bareHost(localText);
  if (localAddress !== null && isIP(localAddress) === 0) {
    return invalid(
      `localaddr must be an IPv4 or IPv6 address of this machine (an IPv6 one without brackets or in them), got '${localText}'`,
    );
  }
  const hostFamily = isIP(host);
  if (localAddress !== null && hostFamily !== 0 && hostFamily !== isIP(localAddress)) {
    return invalid(
      `localaddr ${localText} is IPv${isIP(localAddress)} and the destination ${url.hostname} IPv${hostFamily}: send from an address of the destination's family`,
    );
  }
  return {
    protocol,
    host,
    port,
    multicast: isMulticast(host),
    ttl,
    localAddress,
    // Nothing in a datagram URL is secret: it is shown exactly as written.
    masked: raw,
  };
};
