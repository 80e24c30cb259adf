/**
 * Annex B NAL units as the remux finds them (native search for start codes): where each begins and ends, at the
 * edges of the data and against a byte-by-byte reading.
 */
import { describe, expect, it } from "vitest";
import { NalUnits } from "../../../src/core/flv/nal.ts";
import { prng } from "../../support/ts-generator.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** The units `NalUnits` found, in hex. */
const unitsOf = (data: Uint8Array): string[] => {
  const nals = new NalUnits().scan(data);
  return Array.from({ length: nals.count }, (_, i) => hex(data.subarray(nals.start(i), nals.end(i))));
};

/** The same, found byte by byte as the Annex B syntax reads (B.2): what the native search must agree with. */
const unitsByteByByte = (data: Uint8Array): string[] => {
  const codes: number[] = [];
  for (let i = 0; i + 2 < data.length; i++)
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) codes.push(i);
  return codes.flatMap((code, k) => {
    let end = codes[k + 1] ?? data.length;
    while (end > code + 3 && data[end - 1] === 0) end--;
    return end > code + 3 ? [hex(data.subarray(code + 3, end))] : [];
  });
};

describe("NAL units", () => {
  it("finds units behind 3- and 4-byte start codes, without the zeros before the next one or at the end", () => {
    const au = Uint8Array.of(0, 0, 0, 1, 0x67, 0xaa, 0, 0, 1, 0x68, 0xbb, 0, 0, 0, 0, 1, 0x65, 0xcc, 0, 0);
    expect(unitsOf(au)).toEqual(["67aa", "68bb", "65cc"]);
    // Start codes at the very start and the very end, and one right after another: no empty units.
    expect(unitsOf(Uint8Array.of(0, 0, 1, 0x41, 0, 0, 1, 0, 0, 1, 0x06, 0, 0, 1))).toEqual(["41", "06"]);
    // A start code cut short at the end is trailing zeros; 00 01 is no start code.
    expect(unitsOf(Uint8Array.of(0, 0, 1, 0x41, 0x01, 0, 0))).toEqual(["4101"]);
    expect(unitsOf(Uint8Array.of(0x41, 0, 1, 0, 0))).toEqual([]);
    expect(unitsOf(new Uint8Array(0))).toEqual([]);
  });

  it("agrees with a byte-by-byte reading on data full of zeros and ones", () => {
    const random = prng(7);
    const alphabet = [0, 0, 0, 1, 1, 2, 3, 0x65, 0xff];
    for (let n = 0; n < 3000; n++) {
      const data = Uint8Array.from({ length: (random() * 80) | 0 }, () => alphabet[(random() * 9) | 0] ?? 0);
      expect(unitsOf(data), hex(data)).toEqual(unitsByteByByte(data));
    }
  });

  it("finds the units of a view into a larger buffer, and more units than it first has room for", () => {
    const many = Array.from({ length: 400 }, (_, i) => [0, 0, 1, 0x41 + (i % 4)]).flat();
    const whole = Uint8Array.of(0, 0, 1, 0x09, ...many);
    expect(unitsOf(whole.subarray(4))).toEqual(unitsByteByByte(whole.subarray(4)));
    expect(unitsOf(whole.subarray(4)).length).toBe(400);
  });
});
