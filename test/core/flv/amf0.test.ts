/**
 * AMF0 bytes checked against the specification's layout, written out by hand: marker, big-endian length or
 * double, UTF-8, and the empty key plus 0x09 that closes an object.
 */
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { Amf0Date, decodeAmf0, EcmaArray, encodeAmf0 } from "../../../src/core/flv/amf0.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const ok = (bytes: Uint8Array) => Either.getOrThrow(decodeAmf0(bytes));

describe("AMF0 encoding", () => {
  it("writes each scalar type with its marker", () => {
    expect(hex(encodeAmf0(1))).toBe("003ff0000000000000");
    expect(hex(encodeAmf0(-0.5))).toBe("00bfe0000000000000");
    expect(hex(encodeAmf0(true, false))).toBe("01010100");
    expect(hex(encodeAmf0("connect"))).toBe(`020007${Buffer.from("connect").toString("hex")}`);
    expect(hex(encodeAmf0(null, undefined))).toBe("0506");
    expect(hex(encodeAmf0("é€😀"))).toBe("020009c3a9e282acf09f9880");
    expect(hex(encodeAmf0(new Amf0Date(0)))).toBe("0b00000000000000000000");
  });

  it("writes a string of more than 65535 UTF-8 bytes as a long string", () => {
    const short = encodeAmf0("a".repeat(0xffff));
    expect(hex(short.subarray(0, 3))).toBe("02ffff");
    expect(short.length).toBe(3 + 0xffff);
    const long = encodeAmf0("a".repeat(0x10000));
    expect(hex(long.subarray(0, 5))).toBe("0c00010000");
    expect(long.length).toBe(5 + 0x10000);
    // Two-byte characters: 40000 of them are 80000 bytes, past the short form although 40000 UTF-16 units.
    expect(encodeAmf0("é".repeat(40000))[0]).toBe(0x0c);
  });

  it("writes an object, an ECMA array and a strict array", () => {
    expect(hex(encodeAmf0({ app: "live", n: 2 }))).toBe(
      "03" + "0003617070" + "0200046c697665" + "00016e" + "004000000000000000" + "000009",
    );
    expect(hex(encodeAmf0(new EcmaArray({ width: 1280 })))).toBe(
      "08" + "00000001" + "0005" + "7769647468" + "004094000000000000" + "000009",
    );
    expect(hex(encodeAmf0([1, "x", null]))).toBe("0a00000003" + "003ff0000000000000" + "02000178" + "05");
    expect(hex(encodeAmf0({}))).toBe("03000009");
  });

  it("writes a connect command as RTMP servers read it", () => {
    const body = encodeAmf0("connect", 1, { app: "live", objectEncoding: 0 });
    expect(ok(body)).toEqual(["connect", 1, { app: "live", objectEncoding: 0 }]);
  });
});

describe("AMF0 decoding", () => {
  it("reads back every type it writes", () => {
    const values = [
      42.5,
      true,
      "text",
      "x".repeat(70000),
      null,
      undefined,
      new Amf0Date(1_700_000_000_000),
      { nested: { list: [1, 2, { deep: "yes" }] }, empty: {} },
      new EcmaArray({ duration: 0, stereo: true }),
      [],
    ];
    expect(ok(encodeAmf0(...values))).toEqual(values);
  });

  it("reads a server's _result with a null and an info object", () => {
    const reply = encodeAmf0("_result", 1, null, {
      level: "status",
      code: "NetConnection.Connect.Success",
    });
    expect(ok(reply)).toEqual([
      "_result",
      1,
      null,
      { level: "status", code: "NetConnection.Connect.Success" },
    ]);
  });

  it("says where a value is cut short or unknown", () => {
    const cut = encodeAmf0("onStatus").subarray(0, 6);
    const error = decodeAmf0(cut);
    expect(Either.isLeft(error) && error.left.message).toBe("string at offset 3 needs 8 bytes, 3 remain");
    const unknown = decodeAmf0(Uint8Array.of(0x05, 0x11));
    expect(Either.isLeft(unknown) && unknown.left.message).toBe(
      "type marker 0x11 at offset 1 is not one this decoder reads",
    );
    const lying = decodeAmf0(Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x05));
    expect(Either.isLeft(lying) && lying.left.message).toContain("counts 4294967295 items");
    const unclosed = decodeAmf0(Uint8Array.of(0x03, 0x00, 0x00, 0x05));
    expect(Either.isLeft(unclosed) && unclosed.left.message).toContain("not object end");
  });
});
