/**
 * rtmp(s):// and rtsp(s):// destinations. RTSP goes to ffmpeg whole (redacted). RTMP is spoken in process: the
 * URL gives the application, the stream key (the last path segment, with any query the destination wants) and
 * three options of ours, read out of the query and never sent: `cues=off|oncuepoint|onadcue|youtube` (SCTE-35
 * as AMF0 data messages), `hevc=1` and `av1=1` (the destination takes HEVC, AV1, through Enhanced RTMP) and `ca=/path.pem` (an
 * RTMPS server's certificate is checked against this CA file instead of the system's).
 */
import * as Redacted from "effect/Redacted";
import { OutputError } from "../channel/output-error.ts";
import { authority, bareHost, decoded, invalid, parsePort } from "./shared.ts";

/** An RTMP or RTSP destination: where ffmpeg pushes, the URL kept whole but redacted, its secrets apart. */
interface PushTarget<P extends string> {
  readonly protocol: P;
  readonly host: string;
  readonly port: number;
  readonly url: Redacted.Redacted<string>;
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>;
  readonly masked: string;
}

export type CueMode = "off" | "oncuepoint" | "onadcue" | "youtube";
const CUE_MODES: ReadonlyArray<CueMode> = ["off", "oncuepoint", "onadcue", "youtube"];

export interface RtmpTarget extends PushTarget<"rtmp" | "rtmps"> {
  readonly app: string;
  /** The stream key and the query the destination was given, as `publish` names the stream. */
  readonly streamName: Redacted.Redacted<string>;
  readonly cues: CueMode;
  readonly hevc: boolean;
  /** The destination takes AV1 through Enhanced RTMP (`av01`). */
  readonly av1: boolean;
  readonly caFile: string | null;
}
export type RtspTarget = PushTarget<"rtsp" | "rtsps">;

export const parseRtmp = (protocol: "rtmp" | "rtmps", raw: string, url: URL): RtmpTarget | OutputError => {
  const port = parsePort(url.port, protocol === "rtmp" ? 1935 : 443);
  if (port instanceof OutputError) return port;
  const segments = url.pathname.split("/").filter((segment) => segment !== "");
  const key = segments.at(-1);
  if (segments.length < 2 || key === undefined) {
    return invalid(`an ${protocol} URL needs an application and a stream key: ${protocol}://host/app/key`);
  }
  // Our options leave the query; what remains belongs to the destination, with the key.
  const ours: string[] = [];
  const theirs: string[] = [];
  let cues: CueMode = "off";
  let hevc = false;
  let av1 = false;
  let caFile: string | null = null;
  for (const part of url.search.slice(1).split("&")) {
    if (part === "") continue;
    const [name = "", value = ""] = part.split(/=(.*)/s);
    if (name === "cues") {
      const mode = CUE_MODES.find((candidate) => candidate === value);
      if (mode === undefined) return invalid(`cues must be one of ${CUE_MODES.join(", ")}; got '${value}'`);
      cues = mode;
    } else if (name === "hevc") {
      if (value !== "0" && value !== "1") return invalid(`hevc must be 0 or 1; got '${value}'`);
      hevc = value === "1";
    } else if (name === "av1") {
      if (value !== "0" && value !== "1") return invalid(`av1 must be 0 or 1; got '${value}'`);
      av1 = value === "1";
    } else if (name === "ca") {
      caFile = decoded(value);
      if (protocol !== "rtmps") return invalid("ca applies to rtmps:// only");
      if (!caFile.startsWith("/"))
        return invalid(`ca must be an absolute path to a PEM file; got '${caFile}'`);
    } else {
      theirs.push(part);
      continue;
    }
    ours.push(part);
  }
  const query = theirs.join("&");
  const appPath = segments.slice(0, -1).join("/");
  const hostPart = url.port === "" ? url.hostname : authority(url.hostname, port);
  return {
    protocol,
    host: bareHost(url.hostname),
    port,
    url: Redacted.make(raw),
    secrets: [key, ...(query === "" ? [] : [query])].map((secret) => Redacted.make(secret)),
    masked: `${protocol}://${hostPart}/${appPath}/****${ours.length === 0 ? "" : `?${ours.join("&")}`}`,
    app: appPath,
    streamName: Redacted.make(query === "" ? decoded(key) : `${decoded(key)}?${query}`),
    cues,
    hevc,
    av1,
    caFile,
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
    host: bareHost(url.hostname),
    port,
    url: Redacted.make(raw),
    // The user name is masked in the URL's shape only: by value it would mask ordinary words ("publisher").
    secrets: [password, url.password, query]
      .filter((secret) => secret !== "")
      .map((secret) => Redacted.make(secret)),
    masked: `${protocol}://${credentials}${hostPart}${url.pathname}${query === "" ? "" : "?****"}`,
  };
};
