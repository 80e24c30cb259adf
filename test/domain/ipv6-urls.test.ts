/**
 * IPv6 in every URL kind: `[address]:port` is read into a bare address a socket takes, shown as written, and a
 * bad IPv6 host is refused in words (through the API too, as problem+json). Source-specific multicast groups
 * (232/8, ff3x::) are joined by their allowed senders.
 */
import { Either, Redacted } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sourceJoins, ssmSourcesProblem } from "../../src/domain/channel/sources.ts";
import { authority } from "../../src/domain/url/shared.ts";
import { inputUrlError, maskUrl, parseOutputUrl, rtmpInputTarget } from "../../src/domain/url/url.ts";
import { sockaddrIn, sockaddrText } from "../../src/effects/runtime/ffi/libsrt-structs.ts";
import { json, useTestApp } from "../support/app.ts";

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

describe("IPv6 output and input URLs", () => {
  it("udp:// and rtp:// unicast and multicast, with an IPv6 local address", () => {
    expect(parse("udp://[fd00:6::2]:16297")).toMatchObject({
      protocol: "udp",
      host: "fd00:6::2",
      port: 16297,
      multicast: false,
      masked: "udp://[fd00:6::2]:16297",
    });
    expect(parse("rtp://[::1]:5004")).toMatchObject({ protocol: "rtp", host: "::1", multicast: false });
    // WHATWG URL writes the address compressed and lower case; the mask shows it as written.
    expect(parse("udp://[FF3E:0::8000:1]:6000?ttl=4&localaddr=fd00:6::1")).toMatchObject({
      host: "ff3e::8000:1",
      multicast: true,
      ttl: 4,
      localAddress: "fd00:6::1",
      masked: "udp://[FF3E:0::8000:1]:6000?ttl=4&localaddr=fd00:6::1",
    });
    expect(parse("udp://[ff02::1]:6000")).toMatchObject({ multicast: true });
    expect(rejection("udp://[ff3e::1]:6000?localaddr=198.18.0.1")).toMatch(
      /localaddr 198\.18\.0\.1 is IPv4 and the destination \[ff3e::1\] IPv6/,
    );
    expect(rejection("udp://[fd00::1]:6000?localaddr=nothing")).toMatch(
      /IPv4 or IPv6 address of this machine/,
    );
  });

  it("srt:// caller and listener, on one address or on every one (dual stack)", () => {
    expect(parse("srt://[fd00:6::2]:16298?passphrase=0123456789&streamid=a")).toMatchObject({
      host: "fd00:6::2",
      port: 16298,
      mode: "caller",
      masked: "srt://[fd00:6::2]:16298?passphrase=****&streamid=a",
    });
    expect(parse("srt://[::]:16298?mode=listener")).toMatchObject({ host: "::", mode: "listener" });
    expect(parse("srt://[::1]:16298?mode=listener&streamid=ch1")).toMatchObject({ host: "::1" });
    expect(inputUrlError("srt://[::1]:16298?mode=listener")).toBeUndefined();
  });

  it("rist:// connect and listen: librist gets the address in brackets", () => {
    const connect = parse(
      "rist://[fd00:6::2]:16300?secret=abcdefgh12,rist://[fd00:6::3]:16300?secret=abcdefgh12",
    );
    if (connect.protocol !== "rist") throw new Error("rist expected");
    expect(connect.peers.map((peer) => peer.host)).toEqual(["fd00:6::2", "fd00:6::3"]);
    expect(Redacted.value(connect.peers[0]?.librist ?? Redacted.make(""))).toMatch(
      /^rist:\/\/\[fd00:6::2\]:16300\?secret=/,
    );
    expect(connect.masked).toBe("rist://[fd00:6::2]:16300?secret=****,rist://[fd00:6::3]:16300?secret=****");
    expect(rejection("rist://@[::]:16302?profile=simple")).toMatch(/simple profile does not work over IPv6/);
    const listen = parse("rist://@[::]:16302");
    if (listen.protocol !== "rist") throw new Error("rist expected");
    expect(listen.peers[0]).toMatchObject({ mode: "listener", host: "::" });
    expect(Redacted.value(listen.peers[0]?.librist ?? Redacted.make(""))).toBe("rist://@[::]:16302");
  });

  it("rtmp://, rtmps://, rtsp:// and an HLS push origin", () => {
    expect(parse("rtmp://[fd00:6::2]:1935/live/sk-1")).toMatchObject({
      host: "fd00:6::2",
      port: 1935,
      app: "live",
      masked: "rtmp://[fd00:6::2]:1935/live/****",
    });
    expect(parse("rtmps://[2001:db8::5]/app/key")).toMatchObject({ host: "2001:db8::5", port: 443 });
    expect(parse("rtsp://user:pw@[fd00:6::2]:8554/cam")).toMatchObject({
      host: "fd00:6::2",
      masked: "rtsp://****:****@[fd00:6::2]:8554/cam",
    });
    const hls = parse("hls://?push=http://[fd00:6::2]:16310/live/tok");
    if (hls.protocol !== "hls") throw new Error("hls expected");
    expect(hls.pushShown).toBe("http://[fd00:6::2]:16310/****");
    expect(Redacted.value(hls.push ?? Redacted.make(""))).toBe("http://[fd00:6::2]:16310/live/tok");
  });

  it("an RTMP input listens on an IPv6 address or on :: (every address)", () => {
    const target = rtmpInputTarget("rtmp://[::]:16320/live/KEY123");
    expect(Either.isRight(target) && target.right).toMatchObject({ host: "::", port: 16320, app: "live" });
    expect(maskUrl("rtmp://[::]:16320/live/KEY123")).toBe("rtmp://[::]:16320/live/****");
    expect(inputUrlError("rtmp://[fd00:6::1]:16320/live?key=abc")).toBeUndefined();
  });

  it("refuses a bad IPv6 host in words, whatever the URL kind", () => {
    expect(rejection("udp://[::1::2]:5000")).toBe(
      "'[::1::2]' is not an IPv6 address (write it as [2001:db8::1]:port)",
    );
    expect(rejection("rtp://[fd00:6::zz]:5000")).toMatch(/'\[fd00:6::zz\]' is not an IPv6 address/);
    expect(rejection("udp://fd00:6::2:5000")).toMatch(/looks like an IPv6 address: write it in brackets/);
    expect(rejection("srt://[fe80::1%25eth0]:9000")).toMatch(/cannot carry an IPv6 zone/);
    expect(rejection("rist://[::g]:5000")).toMatch(/'\[::g\]' is not an IPv6 address/);
    expect(rejection("rtmp://[::1/app/key")).toMatch(/IPv6 address is written \[address\]:port/);
    expect(rejection("hls://?push=http://[zz]:8080/p")).toMatch(/^push: '\[zz\]' is not an IPv6 address/);
    expect(inputUrlError("rtmp://[::x]:1935/live/k")).toMatch(/'\[::x\]' is not an IPv6 address/);
  });

  it("writes host:port with IPv6 in brackets", () => {
    expect(authority("fd00:6::2", 9000)).toBe("[fd00:6::2]:9000");
    expect(authority("198.18.0.1", 9000)).toBe("198.18.0.1:9000");
    expect(authority("[::1]", 9000)).toBe("[::1]:9000");
  });

  it("builds the sockaddr_in6 libsrt binds and connects with, and reads it back", () => {
    const v6 = sockaddrIn("fd00:6::2", 16298);
    expect(v6.length).toBe(28);
    expect(v6.readUInt16LE(0)).toBe(10); // AF_INET6
    expect(v6.readUInt16BE(2)).toBe(16298);
    expect(v6.subarray(8, 24).toString("hex")).toBe("fd000006000000000000000000000002");
    expect(sockaddrText(v6)).toBe("[fd00:6::2]:16298");
    expect(sockaddrText(sockaddrIn("::", 1))).toBe("[::]:1");
    expect(sockaddrText(sockaddrIn("::ffff:198.18.0.1", 5))).toBe("[::ffff:c612:1]:5");
    expect(sockaddrText(sockaddrIn("198.18.0.1", 5))).toBe("198.18.0.1:5");
  });
});

describe("source-specific multicast", () => {
  it("joins 232/8 and ff3x:: by each allowed sender, any other group for every sender", () => {
    expect(sourceJoins("232.1.2.3", ["198.18.0.1", "198.18.0.9/32"])).toEqual(["198.18.0.1", "198.18.0.9"]);
    expect(sourceJoins("ff3e::8000:1", ["fd00:6::1"])).toEqual(["fd00:6::1"]);
    expect(sourceJoins("239.1.2.3", ["198.18.0.1"])).toBeNull();
    expect(sourceJoins("ff0e::1", ["fd00:6::1"])).toBeNull();
  });

  it("says in words what an SSM group's allow-list lacks", () => {
    expect(ssmSourcesProblem("232.1.2.3", null)).toMatch(
      /source-specific multicast group \(232\.0\.0\.0\/8\)/,
    );
    expect(ssmSourcesProblem("232.1.2.3", ["198.18.0.0/24"])).toMatch(/"198\.18\.0\.0\/24" is a block/);
    expect(ssmSourcesProblem("ff3e::1", ["198.18.0.1"])).toMatch(
      /IPv6 group: its senders are IPv6 addresses/,
    );
    expect(ssmSourcesProblem("232.1.2.3", ["198.18.0.1"])).toBeNull();
    expect(ssmSourcesProblem("239.1.2.3", null)).toBeNull();
  });
});

describe("the API on IPv6 URLs", () => {
  const app = useTestApp();
  beforeAll(async () => {
    const response = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id: "h6v6", name: "IPv6", rtp_ip: "::1", rtp_port: 26001 }),
    });
    expect(response.status).toBe(201);
  });
  afterAll(async () => {
    await app.request("/api/channels/h6v6", { method: "DELETE" });
  });

  it("takes IPv6 outputs and answers problem+json in words for a bad IPv6 host", async () => {
    for (const url of ["udp://[::1]:26002", "srt://[::1]:26003?mode=listener", "rist://[::1]:26004"]) {
      const ok = await app.request("/api/channels/h6v6/outputs", {
        method: "POST",
        body: JSON.stringify({ protocol: url.slice(0, url.indexOf(":")), url, enabled: false }),
      });
      expect(ok.status, `${url}: ${JSON.stringify(await ok.clone().json())}`).toBe(201);
    }
    const bad = await app.request("/api/channels/h6v6/outputs", {
      method: "POST",
      body: JSON.stringify({ protocol: "udp", url: "udp://[::1::5]:26005" }),
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toMatch(/application\/problem\+json/);
    expect(((await json(bad)) as { detail: string }).detail).toMatch(/'\[::1::5\]' is not an IPv6 address/);
  });

  it("refuses an SSM group without its senders, and takes it with them", async () => {
    const create = (fields: Record<string, unknown>) =>
      app.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({ id: "h6ssm", name: "SSM", rtp_port: 26010, ...fields }),
      });
    const bad = await create({ rtp_ip: "232.5.6.7" });
    expect(bad.status).toBe(400);
    expect(((await json(bad)) as { detail: string }).detail).toMatch(
      /rtp_allowed_sources: 232\.5\.6\.7 is a source-specific multicast group/,
    );
    const good = await create({ rtp_ip: "ff3e::8000:6", rtp_allowed_sources: ["fd00:6::1"] });
    expect(good.status, JSON.stringify(await good.clone().json())).toBe(201);
    await app.request("/api/channels/h6ssm", { method: "DELETE" });
  });
});
