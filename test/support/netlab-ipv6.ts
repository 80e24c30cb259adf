/**
 * The network lab (netlab.ts) over IPv6 alone: veth links addressed in fd00:6::/64 (a /112 each, duplicate
 * address detection off so an address works at once) with no IPv4 address, a management link from the root
 * namespace the same way, and the service listening on `::` there, its API reached at an IPv6 address.
 *
 * Links are named `dl<run>-6<n>a`/`b` (the management one `dl<run>-6ma`/`b` in the root namespace), so the lab's
 * sweep and close remove them with the rest.
 */
import { execa } from "execa";
import { type LabService, type Namespace, readyLabService, type UsedLab } from "./netlab.ts";
import { bin } from "./service.ts";

const ip = async (args: ReadonlyArray<string>): Promise<string> => {
  const result = await execa("ip", args, { reject: false });
  if (result.exitCode !== 0) throw new Error(`ip ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
};

export interface End6 {
  readonly ns: Namespace | null;
  readonly dev: string;
  readonly address: string;
}

export interface Link6 {
  readonly a: End6;
  readonly b: End6;
}

const counters = new Map<string, number>();

const up = async (ns: Namespace | null, dev: string, address: string) => {
  const prefix = ns === null ? [] : ["-n", ns.name];
  await ip([...prefix, "-6", "addr", "add", `${address}/112`, "dev", dev, "nodad"]);
  await ip([...prefix, "link", "set", dev, "up"]);
};

/** A veth between `a` (null: the root namespace) and `b`, each end with an fd00:6::<n>:1 or :2 address only. */
export const link6 = async (
  lab: UsedLab,
  a: Namespace | null,
  b: Namespace,
  name?: string,
): Promise<Link6> => {
  const n = counters.get(lab.run) ?? 0;
  counters.set(lab.run, n + 1);
  const suffix = name ?? String(n);
  const [devA, devB] = [`dl${lab.run}-6${suffix}a`, `dl${lab.run}-6${suffix}b`];
  await ip(["link", "add", devA, "type", "veth", "peer", "name", devB]);
  if (a !== null) await ip(["link", "set", devA, "netns", a.name]);
  await ip(["link", "set", devB, "netns", b.name]);
  const subnet = name === "m" ? 0xff : n + 1;
  const [addressA, addressB] = [`fd00:6::${subnet.toString(16)}:1`, `fd00:6::${subnet.toString(16)}:2`];
  await up(a, devA, addressA);
  await up(b, devB, addressB);
  return { a: { ns: a, dev: devA, address: addressA }, b: { ns: b, dev: devB, address: addressB } };
};

/** The IPv4 addresses in `ns` but loopback's: none, in a lab over IPv6 alone. */
export const ipv4Addresses = async (ns: Namespace): Promise<ReadonlyArray<string>> =>
  (await ns.exec("ip", ["-o", "-4", "addr", "show"]))
    .split("\n")
    .filter((line) => line !== "" && !/\slo\s/.test(line))
    .map((line) => line.split(/\s+/)[3] ?? line);

/**
 * `bin/distributary serve --host ::` in `ns`, its configuration in `configDir`: every address of `ns`, IPv6 and
 * IPv4 alike. The test reaches it over an IPv6 management link, at `http://[fd00:6::ff:2]:8000`.
 */
export const service6 = async (lab: UsedLab, ns: Namespace, configDir: string): Promise<LabService> => {
  const management = await link6(lab, null, ns, "m");
  const token = `lab-${lab.run}-admin-token-0123456789abcdef`;
  const child = lab.spawn(ns, bin, ["serve", "--port", "8000", "--host", "::", "--config-dir", configDir], {
    ...process.env,
    DISTRIBUTARY_ADMIN_TOKEN: token,
  });
  return readyLabService(child, `http://[${management.b.address}]:8000`, token);
};
