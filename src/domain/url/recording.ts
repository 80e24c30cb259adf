/** file:// recordings and hls:// outputs: where they may be written, how they turn over, where HLS is pushed. */
import { posix } from "node:path";
import * as Redacted from "effect/Redacted";
import { OutputError } from "../channel/output-error.ts";
import {
  checkHost,
  decoded,
  invalid,
  ipv6HostProblem,
  parseDecimal,
  parseInteger,
  rawQuery,
  readParams,
} from "./shared.ts";

/** A recording: the TS as received, in files of `rotateSeconds` named by their start time, in `directory`. */
export interface FileTarget {
  readonly protocol: "file";
  /** Absolute, normalised (no `.` or `..`, no trailing `/`). */
  readonly directory: string;
  readonly rotateSeconds: number;
  /** Files whose last write is older than this are deleted; null keeps them whatever their age. */
  readonly keepHours: number | null;
  /** The most the directory's recordings may take, oldest deleted first; null for no limit. */
  readonly maxBytes: number | null;
  readonly masked: string;
}

export interface HlsTarget {
  readonly protocol: "hls";
  /**
   * Directory the playlist and segments are written to, absolute and normalised (no `.`, no repeated or
   * trailing `/`); null: kept in memory and served only.
   */
  readonly dir: string | null;
  readonly targetSeconds: number;
  /** Segments in a live playlist. */
  readonly window: number;
  readonly mode: "live" | "event";
  /** Also EXT-X-CUE-OUT / EXT-X-CUE-IN beside each EXT-X-DATERANGE. */
  readonly cueTags: boolean;
  /** HTTP origin the playlist and segments are PUT to (`<push>/index.m3u8`, `<push>/<segment>.ts`). */
  readonly push: Redacted.Redacted<string> | null;
  /** The push origin as it may be shown (`http://host:port/****`). */
  readonly pushShown: string | null;
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>;
  readonly masked: string;
}

/** Characters a recording's directory may hold: no spaces, no percent-escapes, nothing a shell reads. */
const plainPath = /^(?:\/[A-Za-z0-9._-]+)+$/;

export const parseFile = (raw: string): FileTarget | OutputError => {
  const rest = raw.slice("file://".length);
  const mark = rest.indexOf("?");
  const path = (mark < 0 ? rest : rest.slice(0, mark)).replace(/\/+$/, "");
  if (!path.startsWith("/")) {
    return invalid("a file URL names an absolute directory: file:///var/lib/distributary/recordings/name");
  }
  if (!plainPath.test(path)) {
    return invalid("a recording directory may hold only letters, digits, '.', '_', '-' and '/'");
  }
  if (path.split("/").some((segment) => segment === "." || segment === "..")) {
    return invalid("a recording directory must not contain '.' or '..' segments");
  }
  const params = readParams(new URL(`file:///?${mark < 0 ? "" : rest.slice(mark + 1)}`), [
    "rotate",
    "keep_hours",
    "max_gb",
  ]);
  if (params instanceof OutputError) return params;
  const rotateText = params.get("rotate");
  const rotateSeconds = rotateText === undefined ? 3600 : parseInteger("rotate", rotateText, 1, 86_400);
  if (rotateSeconds instanceof OutputError) return rotateSeconds;
  const keepText = params.get("keep_hours");
  const keepHours = keepText === undefined ? null : parseDecimal("keep_hours", keepText, 0.001, 87_600);
  if (keepHours instanceof OutputError) return keepHours;
  const maxText = params.get("max_gb");
  const maxGb = maxText === undefined ? null : parseDecimal("max_gb", maxText, 0.000001, 1_000_000);
  if (maxGb instanceof OutputError) return maxGb;
  return {
    protocol: "file",
    directory: path,
    rotateSeconds,
    keepHours,
    maxBytes: maxGb === null ? null : Math.floor(maxGb * 1e9),
    masked: raw,
  };
};

/**
 * Why a recording may not be written in `directory`, or null if it may: recordings go in a directory of their
 * own under `root` (the service's recordings directory), never in the root itself or outside it.
 */
export const recordingPlaceProblem = (directory: string, root: string | null): string | null => {
  if (root === null) {
    return "recording to files is off on this server: start it with DISTRIBUTARY_RECORDINGS_DIR set";
  }
  const base = root.replace(/\/+$/, "");
  return directory.startsWith(`${base}/`)
    ? null
    : `${directory} is outside the recordings directory ${base}: record in a directory under it, e.g. file://${base}/channel-name`;
};

export const parseHls = (raw: string, url: URL): HlsTarget | OutputError => {
  if (url.hostname !== "" || (url.pathname !== "" && url.pathname !== "/")) {
    return invalid("an hls URL has no host or path: hls://?dir=/path&target=4&window=6&mode=live");
  }
  const params = readParams(url, ["dir", "target", "window", "mode", "cuetags", "push"]);
  if (params instanceof OutputError) return params;
  const dirText = params.get("dir") ?? null;
  if (dirText !== null && (!dirText.startsWith("/") || dirText.split("/").includes(".."))) {
    return invalid(`dir must be an absolute path without '..', got '${dirText}'`);
  }
  // Normalised, as a recording's directory is: the place and duplicate checks compare one spelling.
  const dir = dirText === null ? null : posix.normalize(dirText).replace(/(.)\/+$/, "$1");
  const targetSeconds = parseInteger("target", params.get("target") ?? "4", 1, 60);
  if (targetSeconds instanceof OutputError) return targetSeconds;
  const window = parseInteger("window", params.get("window") ?? "6", 2, 1000);
  if (window instanceof OutputError) return window;
  const mode = params.get("mode") ?? "live";
  if (mode !== "live" && mode !== "event") return invalid(`mode must be live or event, got '${mode}'`);
  const cueTagsText = params.get("cuetags") ?? "0";
  if (cueTagsText !== "0" && cueTagsText !== "1")
    return invalid(`cuetags must be 0 or 1, got '${cueTagsText}'`);
  const pushText = params.get("push") ?? null;
  let push: URL | null = null;
  if (pushText !== null) {
    try {
      push = new URL(pushText);
    } catch {
      const ipv6 = ipv6HostProblem(pushText);
      return ipv6 === null
        ? invalid(`push must be an http:// or https:// URL, got '${pushText}'`)
        : invalid(`push: ${ipv6.message}`);
    }
    if (push.protocol !== "http:" && push.protocol !== "https:") {
      return invalid("push must be an http:// or https:// URL");
    }
    if (push.username !== "" || push.password !== "" || push.search !== "" || push.hash !== "") {
      return invalid("push takes an origin and a path, without user, password, query or fragment");
    }
    const hostProblem = checkHost(push.hostname);
    if (hostProblem !== null) return hostProblem;
  }
  // An event playlist keeps every segment: in memory only it would grow without end.
  if (mode === "event" && dir === null && push === null) {
    return invalid("mode=event keeps every segment: give a dir or a push origin to write them to");
  }
  const pushPath = push === null ? "" : push.pathname.replace(/\/+$/, "");
  const maskedPush = push === null ? null : `${push.protocol}//${push.host}${pushPath === "" ? "" : "/****"}`;
  const query = rawQuery(raw);
  const shown =
    query === ""
      ? []
      : query.split("&").map((piece) => {
          // By the decoded name, as the parameter was read: `p%75sh=` is the push origin too.
          const equals = piece.indexOf("=");
          const name = decoded(equals < 0 ? piece : piece.slice(0, equals));
          return name === "push" && equals >= 0 ? `${piece.slice(0, equals + 1)}${maskedPush}` : piece;
        });
  return {
    protocol: "hls",
    dir,
    targetSeconds,
    window,
    mode,
    cueTags: cueTagsText === "1",
    push: push === null ? null : Redacted.make(`${push.protocol}//${push.host}${pushPath}`),
    pushShown: maskedPush,
    secrets: pushPath === "" ? [] : [Redacted.make(pushPath.slice(1))],
    masked: `hls://${shown.length === 0 ? "" : `?${shown.join("&")}`}`,
  };
};
