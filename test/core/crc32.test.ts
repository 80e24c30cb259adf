import { describe, expect, it } from "vitest";
import { crc32Mpeg2 } from "../../src/core/ts/crc32.ts";

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);
const hex = (digits: string): Uint8Array => Uint8Array.from(Buffer.from(digits, "hex"));

describe("crc32Mpeg2", () => {
  it("gives the CRC-32/MPEG-2 check value for '123456789'", () => {
    expect(crc32Mpeg2(ascii("123456789"))).toBe(0x0376e6e7);
  });

  it("is the initial value for no bytes", () => {
    expect(crc32Mpeg2(new Uint8Array(0))).toBe(0xffffffff);
  });

  it("returns an unsigned 32-bit number", () => {
    const crc = crc32Mpeg2(ascii("distributary"));
    expect(crc).toBeGreaterThanOrEqual(0);
    expect(crc).toBeLessThan(2 ** 32);
  });

  it("covers only [start, end)", () => {
    const padded = ascii("xx123456789yyy");
    expect(crc32Mpeg2(padded, 2, 11)).toBe(0x0376e6e7);
    expect(crc32Mpeg2(padded, 2, 100)).toBe(crc32Mpeg2(ascii("123456789yyy")));
  });

  it("is 0 over a whole section including its CRC_32", () => {
    // TSDuck's splice_null section (vectors.json v077), CRC_32 7A4FBFFF.
    const section = hex("fc301100000000000000fff0000000007a4fbfff");
    expect(crc32Mpeg2(section)).toBe(0);
    expect(crc32Mpeg2(section, 0, section.length - 4)).toBe(0x7a4fbfff);
  });
});
