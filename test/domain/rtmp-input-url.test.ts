/** rtmp:// and rtmps:// as a channel's input: the two ways to give the key, the certificate, masking, and refusals. */
import { Either, Redacted } from "effect";
import { describe, expect, it } from "vitest";
import { inputUrlError, maskUrl, rtmpInputTarget } from "../../src/domain/url/url.ts";
import { secretsOfUrl } from "../../src/effects/config/secrets.ts";

const target = (url: string) => {
  const parsed = rtmpInputTarget(url);
  if (Either.isLeft(parsed)) throw new Error(parsed.left.message);
  return parsed.right;
};

describe("RTMP input URLs", () => {
  it("takes the key as the path's last part or as key=, the rest of the path being the application", () => {
    const inPath = target("rtmp://0.0.0.0:1935/live/cam-1-Key");
    expect([inPath.host, inPath.port, inPath.app, Redacted.value(inPath.key)]).toEqual([
      "0.0.0.0",
      1935,
      "live",
      "cam-1-Key",
    ]);
    expect(inPath.masked).toBe("rtmp://0.0.0.0:1935/live/****");
    const asParam = target("rtmp://0.0.0.0/studio/a?key=cam-1-Key");
    expect([asParam.port, asParam.app, Redacted.value(asParam.key)]).toEqual([1935, "studio/a", "cam-1-Key"]);
    expect(asParam.masked).toBe("rtmp://0.0.0.0/studio/a?key=****");
    expect(maskUrl("rtmp://0.0.0.0/studio/a?key=cam-1-Key")).toBe("rtmp://0.0.0.0/studio/a?key=****");
    expect(secretsOfUrl("rtmp://0.0.0.0/studio/a?key=cam-1-Key")).toContain("cam-1-Key");
  });

  it("RTMPS takes its certificate and key files, shown as written", () => {
    const tls = target("rtmps://0.0.0.0:1936/live?key=k-123&cert=/etc/tls/a.pem&certkey=/etc/tls/a.key");
    expect([tls.protocol, tls.certFile, tls.certKeyFile]).toEqual([
      "rtmps",
      "/etc/tls/a.pem",
      "/etc/tls/a.key",
    ]);
    expect(tls.masked).toBe("rtmps://0.0.0.0:1936/live?key=****&cert=/etc/tls/a.pem&certkey=/etc/tls/a.key");
  });

  it("says what to fix", () => {
    expect(inputUrlError("rtmp://0.0.0.0:1935/live")).toMatch(/needs an application and a stream key/);
    expect(inputUrlError("rtmp://0.0.0.0:1935/?key=abc")).toMatch(/names its application/);
    expect(inputUrlError("rtmps://0.0.0.0:1936/live/abc")).toMatch(/needs its certificate: cert=/);
    expect(inputUrlError("rtmp://0.0.0.0:1935/live/abc?cert=/a.pem")).toMatch(/rtmps:\/\/ only/);
    expect(inputUrlError("rtmps://0.0.0.0:1936/live/abc?cert=a.pem&certkey=/b")).toMatch(/absolute path/);
    expect(inputUrlError("rtmp://0.0.0.0:1935/live/abc?cues=onadcue")).toMatch(/unknown parameter 'cues'/);
    expect(inputUrlError("rtmp://0.0.0.0:99999/live/abc")).toMatch(/could not be parsed|out of range/);
    expect(inputUrlError("rtmp://0.0.0.0:1935/live/abc")).toBeUndefined();
    expect(inputUrlError("udp://0.0.0.0:1935")).toMatch(/srt:\/\/, rist:\/\/, rtmp:\/\/ or rtmps:\/\//);
  });
});
