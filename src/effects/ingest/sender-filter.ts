/**
 * An input's sender allow-list (domain/channel/sources.ts) as the socket callback asks it: one Map lookup per
 * datagram on the sender's address string, which Node hands over with each datagram anyway. The verdict for
 * an address is worked out once (node:net BlockList) and kept in a bounded cache.
 */
import { BlockList, isIPv4 } from "node:net";
import { parseSourceBlock } from "../../domain/channel/sources.ts";
import { localAddresses } from "../runtime/sockets/own-ports.ts";

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

/** How long a verdict on whether an address is this host's holds: interfaces come and go. */
const LOCAL_VERDICT_MS = 10_000;
const loopback = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1)$/;

/**
 * Whether a sender's address is one of this host's: loopback or an address of one of its interfaces
 * (src/effects/runtime/sockets/own-ports.ts). Asked only for a sender whose port one of the service's outputs sends
 * from, so the interfaces are read only for such a sender's address, once per LOCAL_VERDICT_MS at most.
 */
const makeLocalSenderCheck = (
  addresses: () => ReadonlyArray<string> = localAddresses,
  now: () => number = () => performance.now(),
): ((address: string) => boolean) => {
  const verdicts = new Map<string, boolean>();
  let since = now();
  const decide = (address: string): boolean => {
    const plain = (mappedIpv4.exec(address)?.[1] ?? address).replace(/%.*$/, "").toLowerCase();
    return loopback.test(plain) || addresses().some((local) => local.toLowerCase() === plain);
  };
  return (address) => {
    const at = now();
    if (at - since > LOCAL_VERDICT_MS || verdicts.size >= CACHE_SIZE) {
      verdicts.clear();
      since = at;
    }
    let local = verdicts.get(address);
    if (local === undefined) {
      local = decide(address);
      verdicts.set(address, local);
    }
    return local;
  };
};

/** This thread's verdicts, shared by its inputs. */
export const fromThisHost = makeLocalSenderCheck();
