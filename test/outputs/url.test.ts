import { Either, Redacted } from "effect";
import { describe, expect, it } from "vitest";
import { maskUrl, parseOutputUrl } from "../../src/domain/url/url.ts";

const parse = (url: string) => {
  const result = parseOutputUrl(url);
  if (Either.isLeft(result)) throw new Error(`expected ${url} to parse: ${result.left.message}`);
  return result.right;
};

const rejection = (url: string): string => {
  const result = parseOutputUrl(url);
  if (Either.isRight(result)) throw new Error(`expected ${url} to be rejected`);
  expect(result.left.reason).toBe("invalid_url");
  return result.left.message;
};

describe("output URLs", () => {
  it("reads an RTMP URL's own options out of the query, shows them, and keeps the rest with the key", () => {
    const target = parse("rtmps://live.example.com/app/sk-123?cues=onadcue&hevc=1&ca=/etc/ca.pem&auth=t0k");
    expect(target).toMatchObject({
      protocol: "rtmps",
      app: "app",
      cues: "onadcue",
      hevc: true,
      caFile: "/etc/ca.pem",
      masked: "rtmps://live.example.com/app/****?cues=onadcue&hevc=1&ca=/etc/ca.pem",
    });
    if (target.protocol !== "rtmps") throw new Error("rtmps expected");
    expect(Redacted.value(target.streamName)).toBe("sk-123?auth=t0k");
    expect(parse("rtmp://h/app/key")).toMatchObject({ cues: "off", hevc: false, caFile: null });
    expect(rejection("rtmp://h/app/key?cues=scte")).toBe(
      "cues must be one of off, oncuepoint, onadcue, youtube; got 'scte'",
    );
    expect(rejection("rtmp://h/app/key?hevc=yes")).toBe("hevc must be 0 or 1; got 'yes'");
    expect(rejection("rtmp://h/app/key?ca=/etc/ca.pem")).toBe("ca applies to rtmps:// only");
    expect(rejection("rtmps://h/app/key?ca=ca.pem")).toBe(
      "ca must be an absolute path to a PEM file; got 'ca.pem'",
    );
  });

  it("parses udp and rtp with ttl, localaddr and multicast", () => {
    expect(parse("udp://239.1.2.3:5000?ttl=4&localaddr=127.0.0.1")).toMatchObject({
      protocol: "udp",
      host: "239.1.2.3",
      port: 5000,
      multicast: true,
      ttl: 4,
      localAddress: "127.0.0.1",
    });
    expect(parse("rtp://127.0.0.1:6000")).toMatchObject({ protocol: "rtp", multicast: false, ttl: null });
  });

  it("parses srt caller and listener options, keeping the passphrase redacted", () => {
    const caller = parse(
      "srt://example.com:9000?latency=200&passphrase=0123456789abc&pbkeylen=32&streamid=live/ch1",
    );
    expect(caller).toMatchObject({
      protocol: "srt",
      mode: "caller",
      latencyMs: 200,
      pbkeylen: 32,
      streamId: "live/ch1",
    });
    if (caller.protocol !== "srt" || caller.passphrase === null) throw new Error("expected a passphrase");
    expect(Redacted.value(caller.passphrase)).toBe("0123456789abc");
    expect(String(caller.passphrase)).not.toContain("0123456789abc");
    expect(parse("srt://:9001?mode=listener")).toMatchObject({
      host: "0.0.0.0",
      port: 9001,
      mode: "listener",
    });
  });

  it("parses rtmp and rtmps with default ports", () => {
    expect(parse("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl")).toMatchObject({
      protocol: "rtmp",
      port: 1935,
    });
    expect(parse("rtmps://live-api-s.facebook.com:443/rtmp/FB-123-0-Abc")).toMatchObject({
      protocol: "rtmps",
      port: 443,
    });
  });

  it("masks stream keys, passphrases and token-like stream ids", () => {
    expect(maskUrl("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop")).toBe(
      "rtmp://a.rtmp.youtube.com/live2/****",
    );
    expect(maskUrl("rtmp://127.0.0.1:1936/live/key?token=abc")).toBe("rtmp://127.0.0.1:1936/live/****");
    expect(maskUrl("srt://127.0.0.1:9000?passphrase=0123456789abc&latency=120")).toBe(
      "srt://127.0.0.1:9000?passphrase=****&latency=120",
    );
    expect(maskUrl("srt://h:1?streamid=live/channel1")).toBe("srt://h:1?streamid=live/channel1");
    expect(maskUrl("srt://h:1?streamid=a1b2c3d4e5f6g7h8i9")).toBe("srt://h:1?streamid=****");
    // Shown as written (percent-encoding kept): only the session id is masked.
    expect(maskUrl("srt://h:1?streamid=%23!::r=live/ch1,m=publish,s=a9f8e7d6")).toBe(
      "srt://h:1?streamid=%23!::r=live/ch1,m=publish,s=****",
    );
  });

  it("masks a secret-bearing parameter whose name is percent-encoded, in every scheme", () => {
    // Each parameter is read by its decoded name, so it is masked by its decoded name too.
    const urls = [
      "hls://?p%75sh=http://127.0.0.1:8080/live/s3cr3t&target=2",
      "hls://?%70%75%73%68=http://origin.example:8080/s3cr3t",
      "srt://h:1?pass%70hrase=0123456789s3cr3t",
      "srt://h:1?stream%69d=a1b2c3d4e5f6g7h8i9s3cr3t",
      "srt://h:1?stream%69d=%23!::r=a,%73=s3cr3t",
      "srt://h:1?mode=listener&allowstream%69d=a1b2c3d4e5f6g7h8i9s3cr3t",
      "rtmp://h/app/s3cr3t?tok%65n=s3cr3t",
      "rtsp://u:s3cr3t@h/p?t%6fken=s3cr3t",
    ];
    for (const url of urls) {
      expect(parseOutputUrl(url)._tag, url).toBe("Right");
      expect(maskUrl(url), url).not.toContain("s3cr3t");
    }
    expect(maskUrl("hls://?p%75sh=http://127.0.0.1:8080/live/s3cr3t&target=2")).toBe(
      "hls://?p%75sh=http://127.0.0.1:8080/****&target=2",
    );
  });

  it("a streamid is shown unless it carries a secret, named as one", () => {
    const shown = [
      "srt://h:9000?streamid=%23!::r=live/x,m=publish",
      "srt://h:9000?streamid=%23!::r=live/x,m=request,u=bob,region=eu-west-1",
      "srt://h:9000?streamid=live/channel1-2025-backup&latency=200",
      "srt://h:9000?latency=200&streamid=publish%2Flive%2Fx",
      "srt://h:9000?streamid=publish/mystream",
    ];
    for (const url of shown) expect(maskUrl(url)).toBe(url);
    expect(maskUrl("srt://h:9000?streamid=%23!::r=live/x,m=publish,token=t0k3n")).toBe(
      "srt://h:9000?streamid=%23!::r=live/x,m=publish,token=****",
    );
    expect(maskUrl("srt://h:9000?streamid=live/x?key=s3cr3t,user=bob")).toBe(
      "srt://h:9000?streamid=live/x?key=****,user=bob",
    );
    expect(maskUrl("srt://h:9000?streamid=%23!::r=x,stream_key=abc")).toBe(
      "srt://h:9000?streamid=%23!::r=x,stream_key=****",
    );
    // A URL we reject may still carry a key: only scheme and host survive.
    expect(maskUrl("rtmp://host/app")).toBe("rtmp://host/****");
  });

  it("lists the secrets a child's output must be masked for", () => {
    const target = parse("srt://h:1?passphrase=0123456789abc&streamid=%23!::r=a,s=sess10n");
    if (target.protocol !== "srt") throw new Error("expected srt");
    expect(target.secrets.map(Redacted.value)).toEqual(["0123456789abc", "sess10n"]);
  });

  it("rejects anything that could reach a tool as something else", () => {
    expect(rejection("ftp://example.com/x")).toMatch(/scheme 'ftp:' is not an output/);
    expect(rejection("concat:a.ts|b.ts")).toMatch(/not allowed|not an output/);
    expect(rejection("-f")).toMatch(/must not start with '-'/);
    expect(rejection("udp://127.0.0.1:5000 -i x")).toMatch(/whitespace/);
    expect(rejection("udp://127.0.0.1:5000\n")).toMatch(/whitespace/);
    expect(rejection("rtmp://h/app/key;rm")).toMatch(/';'/);
    expect(rejection("rtmp://h/app/$(id)")).toMatch(/'\$'/);
    expect(rejection("srt://h:1?streamid=%60id%60")).toMatch(/'`'/);
    expect(rejection("srt://h:1?passphrase=abc%26mode%3Dlistener")).toMatch(/'&'/);
    expect(rejection("srt://h:1?rcvbuf=1")).toMatch(/unknown parameter 'rcvbuf'/);
    expect(rejection("srt://h:1?mode=rendezvous")).toMatch(/caller or listener/);
    expect(rejection("srt://h:1?passphrase=short")).toMatch(/10 to 79/);
    expect(rejection("srt://h:1?pbkeylen=16")).toMatch(/needs? a passphrase|only applies/);
    expect(rejection("udp://h:1?ttl=0")).toMatch(/ttl/);
    expect(rejection("udp://h:70000")).toMatch(/out of range|parsed/);
    expect(rejection("udp://h")).toMatch(/needs a port/);
    expect(rejection("udp://-h:1")).toMatch(/not a valid host/);
    expect(rejection("udp://[::1::2]:5000")).toMatch(/not an IPv6 address/);
    expect(rejection("udp://user:pw@h:1")).toMatch(/passwords/);
    expect(rejection("rtmp://h/onlyapp")).toMatch(/application and a stream key/);
    expect(rejection("srt://h:1?mode=caller&mode=listener")).toMatch(/twice/);
  });

  it("parses a file:// recording with rotation and retention, refusing what could leave its directory", () => {
    expect(parse("file:///var/lib/distributary/rec?rotate=3600&keep_hours=48&max_gb=100")).toMatchObject({
      protocol: "file",
      directory: "/var/lib/distributary/rec",
      rotateSeconds: 3600,
      keepHours: 48,
      maxBytes: 100_000_000_000,
      masked: "file:///var/lib/distributary/rec?rotate=3600&keep_hours=48&max_gb=100",
    });
    expect(parse("file:///srv/rec/ch1/")).toMatchObject({ directory: "/srv/rec/ch1", rotateSeconds: 3600 });
    expect(rejection("file:///srv/rec/../../etc")).toMatch(/'\.' or '\.\.' segments/);
    expect(rejection("file:///srv/rec/%2e%2e/etc")).toMatch(/only letters, digits/);
    expect(rejection("file://rec/x")).toMatch(/absolute directory/);
    expect(rejection("file:///srv/rec?rotate=0")).toMatch(/rotate must be a whole number from 1/);
    expect(rejection("file:///srv/rec?keep=1")).toMatch(/unknown parameter 'keep'/);
    expect(rejection("file:///srv/rec?max_gb=-1")).toMatch(/max_gb must be a number/);
  });

  it("normalises an hls dir, so one directory has one spelling", () => {
    for (const dir of ["/srv/rec/h1", "/srv/rec/h1/", "/srv/rec/h1/./", "/srv/rec//h1", "//srv/rec/./h1//"]) {
      expect(parse(`hls://?dir=${dir}`), dir).toMatchObject({ dir: "/srv/rec/h1" });
    }
    expect(parse("hls://?dir=/srv/rec/.")).toMatchObject({ dir: "/srv/rec" });
    // Shown as written: what GET shows, PUT accepts unchanged.
    expect(parse("hls://?dir=/srv/rec/h1/./").masked).toBe("hls://?dir=/srv/rec/h1/./");
  });

  it("parses rtsp and rtsps, masking the user, the password and any query", () => {
    const target = parse("rtsp://pub:s3cret-pass@127.0.0.1:8554/live/cam1?token=abc123");
    expect(target).toMatchObject({ protocol: "rtsp", host: "127.0.0.1", port: 8554 });
    expect(target.masked).toBe("rtsp://****:****@127.0.0.1:8554/live/cam1?****");
    if (target.protocol !== "rtsp") throw new Error("expected rtsp");
    expect(target.secrets.map(Redacted.value)).toEqual(
      expect.arrayContaining(["s3cret-pass", "token=abc123"]),
    );
    expect(parse("rtsps://media.example.com/live")).toMatchObject({ protocol: "rtsps", port: 322 });
    expect(parse("rtsp://h/live")).toMatchObject({ port: 554, masked: "rtsp://h/live" });
    expect(rejection("rtsp://h:8554")).toMatch(/needs a path/);
    expect(maskUrl("rtsp://pub:s3cret-pass@127.0.0.1:8554/live")).not.toContain("s3cret");
  });
});
