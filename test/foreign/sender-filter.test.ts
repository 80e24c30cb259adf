import { describe, expect, it } from "vitest";
import { makeSenderFilter } from "../../src/effects/ingest/sender-filter.ts";

describe("sender filter", () => {
  it("takes every sender without a list", () => {
    expect(makeSenderFilter(undefined)).toBeNull();
  });

  it("matches addresses and blocks of both families, IPv4 senders on a dual-stack socket included", () => {
    const accepts = makeSenderFilter(["203.0.113.7", "198.51.100.0/24", "2001:db8::/32", "::1"]);
    if (accepts === null) throw new Error("expected a filter");
    const verdicts = [
      "203.0.113.7",
      "203.0.113.8",
      "198.51.100.255",
      "198.51.101.1",
      "::ffff:198.51.100.9",
      "::ffff:192.0.2.1",
      "2001:db8:1::5",
      "2001:db9::5",
      "::1",
      "::2",
      "fe80::1%lo",
    ].map((address) => [address, accepts(address)]);
    expect(verdicts).toEqual([
      ["203.0.113.7", true],
      ["203.0.113.8", false],
      ["198.51.100.255", true],
      ["198.51.101.1", false],
      ["::ffff:198.51.100.9", true],
      ["::ffff:192.0.2.1", false],
      ["2001:db8:1::5", true],
      ["2001:db9::5", false],
      ["::1", true],
      ["::2", false],
      ["fe80::1%lo", false],
    ]);
  });

  it("answers the same from its cache, also after more senders than it keeps", () => {
    const accepts = makeSenderFilter(["10.0.0.0/8"]);
    if (accepts === null) throw new Error("expected a filter");
    for (let i = 0; i < 3000; i++) {
      const address = `10.${(i >> 8) & 255}.${i & 255}.1`;
      expect(accepts(address)).toBe(true);
      expect(accepts(`11.0.${i & 255}.1`)).toBe(false);
      expect(accepts(address)).toBe(true);
    }
  });
});
