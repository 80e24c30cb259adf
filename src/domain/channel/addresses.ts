/**
 * What kind of address an IP is, for the places the service connects to on an operator's word (an HLS push
 * origin): a loopback, link-local or unspecified address reaches this machine or its cloud metadata service,
 * and a private one the operator's own network, so an output must not be aimed there unless an admin allows
 * it. An IPv6 address that carries an IPv4 one counts as the IPv4 address it carries: IPv4-compatible
 * (`::127.0.0.1`), IPv4-mapped (`::ffff:127.0.0.1`) and IPv4-translated (`::ffff:0:127.0.0.1`) forms, NAT64's
 * well-known prefix (`64:ff9b::/96`, `64:ff9b::7f00:1` reaches 127.0.0.1 through a translator) and 6to4
 * (`2002:AABB:CCDD::/48`). NAT64's local-use prefix (`64:ff9b:1::/48`), where the IPv4 address may sit at any of
 * several places, is private whole.
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
      ["64:ff9b:1::", 48],
    ]),
  ],
];

/** An IPv6 literal's eight 16-bit groups (`isIP` said it is one). */
const groupsOf = (address: string): ReadonlyArray<number> => {
  const [text = ""] = address.split("%");
  // A dotted quad at the end is the last two groups.
  const hex = text.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    [(Number(a) << 8) | Number(b), (Number(c) << 8) | Number(d)].map((group) => group.toString(16)).join(":"),
  );
  const parse = (part: string | undefined) =>
    part === undefined || part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16));
  const [head, tail] = hex.split("::");
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
};

/** The IPv4 address an IPv6 literal carries (see above), or null. */
const embeddedIPv4 = (address: string): string | null => {
  const groups = groupsOf(address);
  const group = (index: number) => groups[index] ?? 0;
  const zeros = (from: number, to: number) => groups.slice(from, to).every((value) => value === 0);
  const quad = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  // ::a.b.c.d, ::ffff:a.b.c.d, ::ffff:0:a.b.c.d
  if (zeros(0, 5) && (group(5) === 0 || group(5) === 0xffff)) return quad(group(6), group(7));
  if (zeros(0, 4) && group(4) === 0xffff && group(5) === 0) return quad(group(6), group(7));
  // NAT64: 64:ff9b::a.b.c.d
  if (group(0) === 0x64 && group(1) === 0xff9b && zeros(2, 6)) return quad(group(6), group(7));
  // 6to4: 2002:AABB:CCDD::/48
  if (group(0) === 0x2002) return quad(group(1), group(2));
  return null;
};

/**
 * The kind of `address` (an IPv4 or IPv6 literal), or null for a public address or not an IP at all; `carried`
 * the IPv4 address an IPv6 one was judged by.
 */
const addressKind = (address: string): { kind: AddressKind; carried: string | null } | null => {
  const version = isIP(address);
  if (version === 0) return null;
  const type = version === 6 ? "ipv6" : "ipv4";
  const kind = kinds.find(([, blocks]) => blocks.check(address, type))?.[0];
  if (kind !== undefined) return { kind, carried: null };
  const carried = version === 6 ? embeddedIPv4(address) : null;
  const inner = carried === null ? undefined : kinds.find(([, blocks]) => blocks.check(carried, "ipv4"))?.[0];
  return inner === undefined ? null : { kind: inner, carried };
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
  const found = addressKind(address);
  if (found === null) return null;
  const { kind, carried } = found;
  if (kind === "private" && policy.allowPrivate) return null;
  if (kind === "loopback" && policy.allowLoopback === true) return null;
  const words = policy.words ?? HLS_PUSH_WORDS;
  const is = resolved ? `resolves to ${address},` : "is";
  // What the setting opens: private networks for an HLS push, private and loopback ones for the others.
  const opens = words === HLS_PUSH_WORDS ? ["private"] : ["private", "loopback"];
  const unless = opens.includes(kind)
    ? ` (${opens.join(" and ")} ones too when the server runs with ${words.setting}=true)`
    : "";
  const article = kind === "unspecified" ? "an" : "a";
  const carrying = carried === null ? "" : ` (it carries the IPv4 address ${carried})`;
  return `${words.target} ${origin} ${is} ${article} ${kind} address${carrying}: ${words.service} to public addresses only${unless}`;
};
