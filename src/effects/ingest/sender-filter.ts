/**
 * An input's sender allow-list (domain/sources.ts) as the socket callback asks it: one Map lookup per
 * datagram on the sender's address string, which Node hands over with each datagram anyway. The verdict for
 * an address is worked out once (node:net BlockList) and kept in a bounded cache.
 */
import { BlockList, isIPv4 } from "node:net";
import { parseSourceBlock } from "../../domain/sources.ts";

/** Addresses whose verdict is kept; a flood from more senders than this only costs a BlockList check each. */
const CACHE_SIZE = 1024;

// A dual-stack socket reports an IPv4 sender as ::ffff:a.b.c.d; the list names it as a.b.c.d.
const mappedIpv4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** Whether a sender may feed the input; null when the input takes every sender. */
export const makeSenderFilter = (
  sources: ReadonlyArray<string> | undefined,
): ((address: string) => boolean) | null => {
  if (sources === undefined || sources.length === 0) return null;
  const list = new BlockList();
  for (const source of sources) {
    const block = parseSourceBlock(source);
    // The API checked every entry; one that is not a block here allows nobody rather than everybody.
    if (typeof block === "string") continue;
    list.addSubnet(block.address, block.prefix, block.family === 4 ? "ipv4" : "ipv6");
  }
  const verdicts = new Map<string, boolean>();
  const decide = (address: string): boolean => {
    const mapped = mappedIpv4.exec(address)?.[1];
    try {
      if (mapped !== undefined) return list.check(mapped, "ipv4");
      return list.check(address, isIPv4(address) ? "ipv4" : "ipv6");
    } catch {
      return false;
    }
  };
  return (address) => {
    let allowed = verdicts.get(address);
    if (allowed === undefined) {
      allowed = decide(address);
      if (verdicts.size >= CACHE_SIZE) verdicts.clear();
      verdicts.set(address, allowed);
    }
    return allowed;
  };
};
