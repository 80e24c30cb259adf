/**
 * rist:// URLs (src/domain/url/rist.ts): the listening and the connecting form, librist's keys checked, several
 * peers with weights, refusals in words, `secret` and `password` masked, a listener's `srpfile`.
 */
import { Either, Redacted } from "effect";
import { describe, expect, it } from "vitest";
import { inputUrlProblem, maskUrl, outputTargetProblem, parseOutputUrl } from "../../src/domain/url/url.ts";

const parse = (url: string) => {
  const result = parseOutputUrl(url);
  if (Either.isLeft(result)) throw new Error(`expected ${url} to parse: ${result.left.message}`);
  if (result.right.protocol !== "rist") throw new Error("rist expected");
  return result.right;
};

const rejection = (url: string): string => {
  const result = parseOutputUrl(url);
  if (Either.isRight(result)) throw new Error(`expected ${url} to be rejected`);
  return result.left.message;
};

describe("rist URLs", () => {
  it("listens on rist://@:port and @address:port, connects on host:port; main profile unless told", () => {
    expect(parse("rist://@:20000")).toMatchObject({
      profile: "main",
      bufferMs: 1000,
      peers: [{ mode: "listener", host: "0.0.0.0", port: 20000 }],
      masked: "rist://@:20000",
    });
    expect(parse("rist://@127.0.0.1:20000?profile=simple&buffer=500")).toMatchObject({
      profile: "simple",
      bufferMs: 500,
      peers: [{ mode: "listener", host: "127.0.0.1" }],
    });
    const caller = parse("rist://rx.example.net:20000?buffer=1000&rtt-min=20&rtt-max=200&cname=studio");
    expect(caller.peers[0]).toMatchObject({ mode: "caller", host: "rx.example.net", port: 20000 });
    expect(Redacted.value(caller.peers[0]?.librist ?? Redacted.make(""))).toBe(
      "rist://rx.example.net:20000?buffer=1000&rtt-min=20&rtt-max=200&cname=studio",
    );
  });

  it("takes several peers with weights, all of one mode and profile", () => {
    const target = parse("rist://a.example:20000?weight=5,rist://b.example:20002?weight=1");
    expect(target.peers.map((peer) => [peer.host, peer.weight])).toEqual([
      ["a.example", 5],
      ["b.example", 1],
    ]);
    expect(rejection("rist://a.example:20000,rist://@:20002")).toBe(
      "the peers of a rist URL either all listen (rist://@…) or all connect",
    );
    expect(rejection("rist://a:1?profile=main,rist://b:2?profile=simple")).toBe(
      "peer 2: every peer of a rist URL must use the same profile",
    );
  });

  it("masks secret and password; hands librist the AES size and the EAP-SRP credentials", () => {
    const url = "rist://@:20000?secret=very-secret-123&aes-type=256,rist://@:20002?secret=other-secret-456";
    const target = parse(url);
    expect(target.masked).toBe("rist://@:20000?secret=****&aes-type=256,rist://@:20002?secret=****");
    expect(maskUrl(url)).toBe(target.masked);
    expect(target.secrets.map(Redacted.value)).toEqual(["very-secret-123", "other-secret-456"]);
    expect(target.peers.map((peer) => peer.aesType)).toEqual([256, 128]);
    const srp = parse("rist://tx.example:20000?username=studio&password=pass-word-1");
    expect(srp.masked).toBe("rist://tx.example:20000?username=studio&password=****");
    expect(srp.peers[0]?.username).toBe("studio");
  });

  it("a listener's srpfile: kept as a path (no secret), never handed to librist, only on listeners", () => {
    const target = parse("rist://@:20000?srpfile=/etc/distributary/rist-users&buffer=500");
    expect(target.peers[0]?.srpFile).toBe("/etc/distributary/rist-users");
    expect(target.masked).toBe("rist://@:20000?srpfile=/etc/distributary/rist-users&buffer=500");
    expect(target.secrets).toEqual([]);
    expect(Redacted.value(target.peers[0]?.librist ?? Redacted.make(""))).toBe(
      "rist://@0.0.0.0:20000?buffer=500",
    );
    expect(rejection("rist://tx.example:20000?srpfile=/etc/users")).toContain("it goes on a listening peer");
    expect(rejection("rist://@:20000?srpfile=users")).toContain("srpfile must be the absolute path");
    expect(rejection("rist://@:20000?srpfile=/etc/users&username=a&password=b")).toContain("not both");
  });

  it("refuses what librist would misread, in words", () => {
    expect(rejection("rist://@:20000?latency=100")).toContain("unknown parameter 'latency' for rist");
    expect(rejection("rist://@:20000?profile=advanced")).toBe(
      "profile must be simple or main, got 'advanced'",
    );
    expect(rejection("rist://@:20000?profile=simple&secret=abcdefgh12")).toBe(
      "the simple profile has no encryption or authentication; use profile=main for secret, username and password, srpfile",
    );
    expect(rejection("rist://@:20000?secret=short")).toBe("secret must be 8 to 127 characters long");
    expect(rejection("rist://@:20000?aes-type=128")).toBe("aes-type only applies with a secret");
    expect(rejection("rist://@:20000?secret=abcdefgh12&aes-type=192")).toBe(
      "aes-type must be 128 or 256, got '192'",
    );
    expect(rejection("rist://@:20000?username=x")).toBe("username and password go together (EAP-SRP)");
    expect(rejection("rist://@:20000?buffer=99999")).toBe(
      "buffer must be a whole number from 0 to 30000, got '99999'",
    );
    expect(rejection("rist://:20000")).toContain(
      "expected rist://host:port (connect) or rist://@:port (listen)",
    );
    expect(rejection("rist://@:20000/path")).toBe("a rist URL has no path");
  });

  it("as an input or an output: the simple profile's sender always connects", () => {
    const problem = (url: string, role: "input" | "output") => {
      const result = parseOutputUrl(url);
      if (Either.isLeft(result)) throw new Error(result.left.message);
      return role === "input" ? inputUrlProblem(result.right) : outputTargetProblem(result.right);
    };
    expect(problem("rist://@:20000?profile=simple", "input")).toBeUndefined();
    expect(problem("rist://tx:20000?profile=simple", "input")).toContain(
      "in the simple profile a RIST input listens",
    );
    expect(problem("rist://tx:20000", "input")).toBeUndefined();
    expect(problem("rist://@:20000?profile=simple", "output")).toContain(
      "a RIST output connects to its receiver",
    );
    expect(problem("rist://@:20000", "output")).toBeUndefined();
    expect(problem("udp://127.0.0.1:5000", "input")).toBe(
      "an input URL is srt://, rist://, rtmp:// or rtmps:// (RTP and UDP use rtp_ip and rtp_port)",
    );
  });
});
