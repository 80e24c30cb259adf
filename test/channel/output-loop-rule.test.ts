/**
 * The rule that keeps an output from feeding an input of this host, as a pure function over the stored
 * channels and the host's addresses (given, not read from the machine); and the registry of the service's own
 * sending ports the inputs consult for a loop the rule cannot see.
 */
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { ChannelId, OutputId } from "../../src/domain/base/ids.ts";
import type { ChannelBody, ChannelConfig } from "../../src/domain/channel/channel.ts";
import { checkChannel } from "../../src/domain/channel/channel-checks.ts";
import { outputLoop } from "../../src/domain/channel/loops.ts";
import { buildChannel } from "../../src/domain/channel/rules.ts";
import { fromThisHost } from "../../src/effects/ingest/sender-filter.ts";
import { isOwnPort, localAddresses, markOwnPort } from "../../src/effects/runtime/sockets/own-ports.ts";

const HOST = ["127.0.0.1", "::1", "10.1.2.3", "fd00::2"];

const make = (
  body: Record<string, unknown> & { id: string; rtp_ip: string; rtp_port: number },
): ChannelConfig => {
  const built = buildChannel(
    { name: body.id, ...body, id: ChannelId.make(body.id) } as unknown as ChannelBody,
    { desired: "stopped", created_at: "2026-01-01T00:00:00.000Z" },
  );
  if (Either.isLeft(built)) throw new Error(built.left.message);
  return built.right;
};

const output = (url: string) => ({
  id: OutputId.make("o1"),
  name: "out",
  protocol: url.slice(0, 3) as "udp" | "rtp",
  url,
  enabled: true,
});

describe("outputs that feed an input of this host", () => {
  const channels = [
    make({ id: "lo", rtp_ip: "127.0.0.1", rtp_port: 5000, backup_rtp_port: 5010 }),
    make({ id: "any", rtp_ip: "0.0.0.0", rtp_port: 6000 }),
    make({ id: "dual", rtp_ip: "::", rtp_port: 6100 }),
    make({ id: "group", rtp_ip: "239.1.1.1", rtp_port: 7000 }),
    make({ id: "fec", rtp_ip: "127.0.0.1", rtp_port: 8000, redundancy: { fec: true } }),
    make({ id: "srt", rtp_ip: "127.0.0.1", rtp_port: 9000, input_url: "srt://0.0.0.0:9000?mode=listener" }),
  ];
  const verdict = (url: string) => {
    const problem = outputLoop(output(url), "url", channels, HOST);
    return problem === undefined ? null : (problem.errors?.[0]?.message ?? problem.message);
  };

  it("names the input a destination reaches", () => {
    const cases: Array<[string, string | null]> = [
      ["udp://127.0.0.1:5000", "primary input of channel 'lo'"],
      ["udp://127.0.0.1:5010", "backup input of channel 'lo'"],
      ["rtp://LOCALHOST:5000", "primary input of channel 'lo'"],
      ["udp://0.0.0.0:5000", "primary input of channel 'lo'"],
      ["udp://127.0.0.2:5000", null],
      ["udp://10.1.2.3:5000", null],
      ["udp://10.1.2.3:6000", "primary input of channel 'any'"],
      ["udp://127.9.9.9:6000", "primary input of channel 'any'"],
      ["udp://0.0.0.0:6000", "primary input of channel 'any'"],
      ["udp://10.1.2.4:6000", null],
      ["udp://10.1.2.3:6100", "primary input of channel 'dual'"],
      ["udp://239.1.1.1:7000?ttl=2", "primary input of channel 'group'"],
      ["udp://239.1.1.2:7000", null],
      ["udp://127.0.0.1:7000", null],
      ["udp://127.0.0.1:8002", "primary FEC column stream of channel 'fec'"],
      ["udp://127.0.0.1:8004", "primary FEC row stream of channel 'fec'"],
      ["udp://127.0.0.1:8001", null],
      ["udp://127.0.0.1:9000", null],
      ["udp://192.0.2.1:5000", null],
    ];
    expect(
      cases.map(([url]) => [url, verdict(url)?.match(/is the (.*) \(\w+\) on this host/)?.[1] ?? null]),
    ).toEqual(cases.map(([url, expected]) => [url, expected === null ? null : expected]));
    expect(verdict("udp://127.0.0.1:5000")).toBe(
      "udp://127.0.0.1:5000 is the primary input of channel 'lo' (lo) on this host: an output sent there " +
        "would feed the stream back into the service, a loop that multiplies it; send to another port or host",
    );
  });

  it("checks a channel's outputs and, the other way round, its inputs against every output", () => {
    const relay = make({
      id: "relay",
      rtp_ip: "127.0.0.1",
      rtp_port: 5100,
      outputs: [
        { protocol: "srt", url: "srt://127.0.0.1:6000" },
        { name: "air", protocol: "udp", url: "udp://10.1.2.3:5200" },
      ],
    });
    expect(checkChannel(relay, channels, HOST)).toBeUndefined();
    const self = make({
      id: "self",
      rtp_ip: "0.0.0.0",
      rtp_port: 5300,
      outputs: [{ protocol: "udp", url: "udp://127.0.0.1:5300" }],
    });
    expect(checkChannel(self, [], HOST)?.errors).toEqual([
      {
        field: "outputs[0].url",
        message: expect.stringContaining("is the primary input of channel 'self' (self)"),
      },
    ]);
    const listener = make({ id: "listener", rtp_ip: "0.0.0.0", rtp_port: 5150, backup_rtp_port: 5200 });
    const problem = checkChannel(listener, [relay], HOST);
    expect(problem?.reason).toBe("invalid");
    expect(problem?.errors).toEqual([
      {
        field: "backup_rtp_port",
        message:
          "the backup input 0.0.0.0:5200 is where output 'air' of channel 'relay' (relay) sends " +
          "(udp://10.1.2.3:5200): listening there would feed that output back into the service, a loop that " +
          "multiplies the stream; choose another port",
      },
    ]);
    // Another host's address is not one of ours: the same input is free.
    expect(checkChannel(listener, [relay], ["127.0.0.1"])).toBeUndefined();
  });
});

describe("the service's own sending ports", () => {
  it("are marked while an output holds them, and a local sender is told from a remote one", () => {
    expect(isOwnPort(40_123)).toBe(false);
    const first = markOwnPort(40_123);
    const second = markOwnPort(40_123);
    expect(isOwnPort(40_123)).toBe(true);
    first();
    first();
    expect(isOwnPort(40_123)).toBe(true);
    second();
    expect(isOwnPort(40_123)).toBe(false);

    const mine = localAddresses();
    expect(mine).toContain("127.0.0.1");
    for (const address of [...mine, "127.0.0.9", "::ffff:127.0.0.1", "::1"])
      expect(fromThisHost(address), address).toBe(true);
    for (const address of ["192.0.2.250", "203.0.113.9", "2001:db8::1", "::ffff:203.0.113.9"])
      expect(fromThisHost(address), address).toBe(false);
  });
});
