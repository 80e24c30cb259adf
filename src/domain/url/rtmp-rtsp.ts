/**
 * rtmp(s):// and rtsp(s):// destinations, the protocols ffmpeg speaks for us: the URL goes to it whole
 * (redacted), so only the host, the port and what to mask are read here.
 */
import { Redacted } from "effect";
import { OutputError } from "../errors.ts";
import { authority, decoded, invalid, parsePort } from "./shared.ts";

/** An RTMP or RTSP destination: where ffmpeg pushes, the URL kept whole but redacted, its secrets apart. */
interface PushTarget<P extends string> {
  readonly protocol: P;
  readonly host: string;
  readonly port: number;
  readonly url: Redacted.Redacted<string>;
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>;
  readonly masked: string;
}

export type RtmpTarget = PushTarget<"rtmp" | "rtmps">;
export type RtspTarget = PushTarget<"rtsp" | "rtsps">;

export const parseRtmp = (protocol: "rtmp" | "rtmps", raw: string, url: URL): RtmpTarget | OutputError => {
  const port = parsePort(url.port, protocol === "rtmp" ? 1935 : 443);
  if (port instanceof OutputError) return port;
  const segments = url.pathname.split("/").filter((segment) => segment !== "");
  const key = segments.at(-1);
  if (segments.length < 2 || key === undefined) {
    return invalid(`an ${protocol} URL needs an application and a stream key: ${protocol}://host/app/key`);
  }
  const query = url.search.slice(1);
  const appPath = segments.slice(0, -1).join("/");
  const hostPart = url.port === "" ? url.hostname : authority(url.hostname, port);
  return {
    protocol,
    host: url.hostname,
    port,
    url: Redacted.make(raw),
    secrets: [key, ...(query === "" ? [] : [query])].map((secret) => Redacted.make(secret)),
    masked: `${protocol}://${hostPart}/${appPath}/****`,
  };
};

export const parseRtsp = (protocol: "rtsp" | "rtsps", raw: string, url: URL): RtspTarget | OutputError => {
  const port = parsePort(url.port, protocol === "rtsp" ? 554 : 322);
  if (port instanceof OutputError) return port;
  if (url.pathname === "" || url.pathname === "/") {
    return invalid(`an ${protocol} URL needs a path naming the stream: ${protocol}://host:port/path`);
  }
  const password = decoded(url.password);
  const query = url.search.slice(1);
  const hostPart = url.port === "" ? url.hostname : authority(url.hostname, port);
  const credentials =
    url.username === "" && url.password === "" ? "" : url.password === "" ? "****@" : "****:****@";
  return {
    protocol,
    host: url.hostname,
    port,
    url: Redacted.make(raw),
    // The user name is masked in the URL's shape only: by value it would mask ordinary words ("publisher").
    secrets: [password, url.password, query]
      .filter((secret) => secret !== "")
      .map((secret) => Redacted.make(secret)),
    masked: `${protocol}://${credentials}${hostPart}${url.pathname}${query === "" ? "" : "?****"}`,
  };
};
