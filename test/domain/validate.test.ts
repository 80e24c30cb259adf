/**
 * How a request body is decoded, called directly: strict bodies refuse what they do not know, the original
 * API's bodies take it with a warning, and every problem names its field in words a caller can act on.
 */
import { Effect, Either } from "effect";
import { describe, expect, it } from "vitest";
import { decodeBody, decodeLenientEither, invalid } from "../../src/domain/base/validate.ts";
import { ChannelBody, ChannelPatch } from "../../src/domain/channel/channel.ts";

const lenient = decodeLenientEither(ChannelBody);
const problems = (result: Either.Either<unknown, { readonly message: string }>) =>
  Either.isLeft(result) ? result.left.message : null;

describe("decodeBody (strict)", () => {
  const patch = (input: unknown) => Effect.runSync(Effect.either(decodeBody(ChannelPatch)(input)));

  // Each field once: an optional field's wrong value is not echoed as "Expected undefined, actual …".
  it("names an unknown field and every wrong value at once", () => {
    const result = patch({ rtp_port: 70000, colour: "red", name: "" });
    expect(Either.isLeft(result) && result.left.errors).toEqual([
      { field: "colour", message: "is not a known field" },
      { field: "name", message: "must not be empty" },
      { field: "rtp_port", message: "must be an integer from 1 to 65535, got 70000" },
    ]);
  });

  it("says which field is missing, and which word a literal takes", () => {
    const missing = Effect.runSync(Effect.either(decodeBody(ChannelBody)({ name: "News", rtp_port: 5000 })));
    expect(problems(missing)).toBe("rtp_ip: is required");
    const protocol = Effect.runSync(
      Effect.either(
        decodeBody(ChannelBody)({
          name: "News",
          rtp_ip: "0.0.0.0",
          rtp_port: 5000,
          outputs: [{ protocol: "http", url: "udp://10.0.0.1:1234" }],
        }),
      ),
    );
    expect(problems(protocol)).toBe(
      'outputs[0].protocol: must be one of srt, rist, rtmp, rtmps, udp, rtp, rtsp, rtsps, file, hls; got "http"',
    );
  });
});

describe("decodeLenientEither (the original API's bodies)", () => {
  it("ignores unknown fields, at any depth, and names each in a warning", () => {
    const result = lenient({
      name: "News",
      rtp_ip: "0.0.0.0",
      rtp_port: 5000,
      status: "running",
      outputs: [{ protocol: "udp", url: "udp://10.0.0.1:1234", bitrate: 5 }],
    });
    expect(Either.isRight(result) && result.right.warnings).toEqual([
      { field: "status", message: "is not a known field; ignored" },
      { field: "outputs[0].bitrate", message: "is not a known field; ignored" },
    ]);
    expect(Either.isRight(result) && result.right.value).toEqual({
      name: "News",
      rtp_ip: "0.0.0.0",
      rtp_port: 5000,
      outputs: [{ protocol: "udp", url: "udp://10.0.0.1:1234" }],
    });
  });

  it("reads an empty optional field as absent, with a warning, and refuses an empty required one", () => {
    const blank = lenient({ name: "News", rtp_ip: "0.0.0.0", rtp_port: 5000, backup_rtp_ip: "" });
    expect(Either.isRight(blank) && blank.right.value).toEqual({
      name: "News",
      rtp_ip: "0.0.0.0",
      rtp_port: 5000,
    });
    expect(Either.isRight(blank) && blank.right.warnings).toEqual([
      { field: "backup_rtp_ip", message: "is empty; treated as absent" },
    ]);
    expect(problems(lenient({ name: "", rtp_ip: "0.0.0.0", rtp_port: 5000 }))).toBe(
      "name: must not be empty",
    );
  });

  it("stays strict inside our own additions", () => {
    const result = lenient({ name: "News", rtp_ip: "0.0.0.0", rtp_port: 5000, redundancy: { mod: "merge" } });
    expect(problems(result)).toBe("redundancy.mod: is not a known field");
  });
});

describe("invalid", () => {
  it("joins the issues into one message, each with its field", () => {
    const error = invalid([
      { field: "rtp_port", message: "is taken" },
      { field: "name", message: "is required" },
    ]);
    expect(error.reason).toBe("invalid");
    expect(error.message).toBe("rtp_port: is taken; name: is required");
  });
});
