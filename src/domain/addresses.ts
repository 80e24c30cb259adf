/**
 * What kind of address an IP is, for the places the service connects to on an operator's word (an HLS push
 * origin): a loopback, link-local or unspecified address reaches this machine or its cloud metadata service,
 * and a private one the operator's own network, so an output must not be aimed there unless an admin allows
 * it. IPv4-mapped IPv6 forms (`::ffff:127.0.0.1`) count as the IPv4 address they carry.
 */
import { BlockList, isIP } from "node:net";

type AddressKind = "loopback" | "link-local" | "unspecified" | "private";

const list = (subnets: ReadonlyArray<readonly [string, number]>): BlockList => {
  const blocks = new BlockList();
  for (const [network, prefix] of subnets)
    blocks.addSubnet(network, prefix, isIP(network) === 6 ? "ipv6" : "ipv4");
  return blocks;
};

const kinds: ReadonlyArray<readonly [AddressKind, BlockList]> = [
  [
    "loopback",
    list([
      ["127.0.0.0", 8],
      ["::1", 128],
    ]),
  ],
  [
    "link-local",
    list([
      ["169.254.0.0", 16],
      ["fe80::", 10],
    ]),
  ],
  [
    "unspecified",
    list([
      ["0.0.0.0", 8],
      ["::", 128],
    ]),
  ],
  [
    "private",
    list([
      ["10.0.0.0", 8],
      ["172.16.0.0", 12],
      ["192.168.0.0", 16],
      ["100.64.0.0", 10],
      ["fc00::", 7],
    ]),
  ],
];

/** The kind of `address` (an IPv4 or IPv6 literal), or null for a public address or not an IP at all. */
const addressKind = (address: string): AddressKind | null => {
  const version = isIP(address);
  if (version === 0) return null;
  const type = version === 6 ? "ipv6" : "ipv4";
  return kinds.find(([, blocks]) => blocks.check(address, type))?.[0] ?? null;
};

/** Which addresses an HLS push may reach. */
export interface PushAddressPolicy {
  /** Private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7): DISTRIBUTARY_HLS_PUSH_ALLOW_PRIVATE. */
  readonly allowPrivate: boolean;
  /** Loopback: only for tests, whose origins listen on 127.0.0.1. */
  readonly allowLoopback?: boolean;
  /** How a refusal names what it refused and the setting that allows it (an HLS push's, unless given). */
  readonly words?: { readonly target: string; readonly service: string; readonly setting: string };
}

const HLS_PUSH_WORDS = {
  target: "the push origin",
  service: "HLS push goes",
  setting: "DISTRIBUTARY_HLS_PUSH_ALLOW_PRIVATE",
};

/**
 * Why an HLS push (or what `policy.words` names) may not go to `address`, in words, or null if it may. `origin` names the origin as it may
 * be shown; `resolved` says the address came from resolving its name.
 */
export const pushAddressProblem = (
  address: string,
  policy: PushAddressPolicy,
  origin: string,
  resolved: boolean,
): string | null => {
  const kind = addressKind(address);
  if (kind === null || (kind === "private" && policy.allowPrivate)) return null;
  if (kind === "loopback" && policy.allowLoopback === true) return null;
  const words = policy.words ?? HLS_PUSH_WORDS;
  const is = resolved ? `resolves to ${address},` : "is";
  // What the setting opens: private networks for an HLS push, private and loopback ones for the others.
  const opens = words === HLS_PUSH_WORDS ? ["private"] : ["private", "loopback"];
  const unless = opens.includes(kind)
    ? ` (${opens.join(" and ")} ones too when the server runs with ${words.setting}=true)`
    : "";
  const article = kind === "unspecified" ? "an" : "a";
  return `${words.target} ${origin} ${is} ${article} ${kind} address: ${words.service} to public addresses only${unless}`;
};
