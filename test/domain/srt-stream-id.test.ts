/**
 * SRT stream ids (domain/url/srt.ts): the Access Control syntax and a plain stream id as a caller's request, a
 * listener's streamid as the name its callers reach it by, and the rules that let channels share a listener
 * port by stream id but never one stream id.
 */
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import type { ChannelBody, ChannelConfig } from "../../src/domain/channel/channel.ts";
import { checkChannel } from "../../src/domain/channel/channel-checks.ts";
import { buildChannel } from "../../src/domain/channel/rules.ts";
import { listenerRoute, parseStreamId } from "../../src/domain/url/srt.ts";
import { maskUrl, parseOutputUrl, sharedSrtPort } from "../../src/domain/url/url.ts";

const srt = (url: string) => {
  const parsed = parseOutputUrl(url);
  if (Either.isLeft(parsed)) throw new Error(parsed.left.message);
  if (parsed.right.protocol !== "srt") throw new Error("not srt");
  return parsed.right;
};

const problem = (url: string) => {
  const parsed = parseOutputUrl(url);
  return Either.isLeft(parsed) ? parsed.left.message : null;
};

const base = { desired: "stopped", created_at: "2026-01-01T00:00:00.000Z" } as const;
const channel = (id: string, inputUrl: string, rtpPort = 9000): ChannelConfig => {
  const built = buildChannel(
    { id, name: id, rtp_ip: "0.0.0.0", rtp_port: rtpPort, input_url: inputUrl } as ChannelBody,
    base,
  );
  if (Either.isLeft(built)) throw new Error(built.left.message);
  return built.right;
};

describe("SRT stream ids", () => {
  it("reads the Access Control syntax (r= the name, m= publish or request, request by default) and a plain id", () => {
    expect(parseStreamId("#!::r=cam1,m=publish")).toEqual({ name: "cam1", mode: "publish" });
    expect(parseStreamId("#!::u=alice,r=cam1")).toEqual({ name: "cam1", mode: "request" });
    expect(parseStreamId("cam1")).toEqual({ name: "cam1", mode: null });
    expect(parseStreamId("#!::m=publish")).toBe("it names no resource (r=)");
    expect(parseStreamId("#!::r=cam1,m=bidirectional")).toBe(
      "mode m=bidirectional is not served here (publish to an input, request from an output)",
    );
  });

  it("a listener's streamid is the name its callers reach it by; a caller's is only what it sends", () => {
    expect(listenerRoute(srt("srt://:9000?mode=listener&streamid=cam1"))).toBe("cam1");
    expect(listenerRoute(srt("srt://:9000?mode=listener&streamid=%23!::r=cam1,m=publish"))).toBe("cam1");
    expect(listenerRoute(srt("srt://:9000?mode=listener"))).toBeNull();
    expect(listenerRoute(srt("srt://host:9000?streamid=cam1"))).toBeNull();
    expect(sharedSrtPort("srt://:9000?mode=listener&streamid=cam1")).toBe(9000);
    expect(sharedSrtPort("srt://:9000?mode=listener")).toBeNull();
    expect(problem("srt://:9000?mode=listener&streamid=%23!::m=publish")).toBe(
      "streamid of a listener: it names no resource (r=)",
    );
    expect(maskUrl("srt://:9000?mode=listener&streamid=cam1&passphrase=camera-one-secret")).toBe(
      "srt://:9000?mode=listener&streamid=cam1&passphrase=****",
    );
  });

  it("channels share a listener port by stream id, never one stream id; without one the port is one channel's", () => {
    const cam1 = channel("cam-1", "srt://:9000?mode=listener&streamid=cam1");
    const cam2 = channel("cam-2", "srt://:9000?mode=listener&streamid=%23!::r=cam2,m=publish");
    expect(checkChannel(cam2, [cam1], ["127.0.0.1"])).toBeUndefined();
    const again = channel("cam-1-again", "srt://:9000?mode=listener&streamid=%23!::r=cam1");
    const refused = checkChannel(again, [cam1, cam2], ["127.0.0.1"]);
    expect(refused?.reason).toBe("conflict");
    expect(refused?.message).toBe(
      "input_url: the stream id 'cam1' on SRT port 9000 is already taken by the primary input of channel 'cam-1' (cam-1); give this channel its own streamid",
    );
    const alone = channel("cam-3", "srt://:9000?mode=listener");
    expect(checkChannel(alone, [cam1], ["127.0.0.1"])?.reason).toBe("conflict");
  });
});
