/**
 * rtmp(s):// as a channel's input: where the service listens for a publisher, the application, the stream key a
 * publisher must give, and for RTMPS the certificate it shows (PEM files on this node):
 *
 *   rtmp://0.0.0.0:1935/live/KEY                       the key as the path's last part, the rest the application
 *   rtmp://0.0.0.0:1935/live?key=KEY                   the key as a parameter, the whole path the application
 *   rtmps://0.0.0.0:1936/live?key=KEY&cert=/etc/tls/ingest.pem&certkey=/etc/tls/ingest.key
 *
 * Channels whose inputs name one port share one listener and are told apart by application and key. The key is
 * a secret: masked as `****` wherever the URL is shown (`rtmp://0.0.0.0:1935/live/****`, `…/live?key=****`).
 */
import * as Redacted from "effect/Redacted";
import { OutputError } from "../channel/output-error.ts";
import {
  bareHost,
  beforeQuery,
  checkHost,
  decoded,
  invalid,
  ipv6HostProblem,
  parsePort,
  rawQuery,
  readParams,
} from "./shared.ts";

export interface RtmpInputTarget {
  readonly protocol: "rtmp" | "rtmps";
  /** The address to listen on (`0.0.0.0` for every interface). */
  readonly host: string;
  readonly port: number;
  /** The application a publisher connects to (`live`). */
  readonly app: string;
  /** The stream key `publish` must name. */
  readonly key: Redacted.Redacted<string>;
  /** RTMPS: the certificate chain and its private key, PEM files. */
  readonly certFile: string | null;
  readonly certKeyFile: string | null;
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>;
  readonly masked: string;
}

const absolute = (name: string, path: string): string | OutputError =>
  path.startsWith("/") ? path : invalid(`${name} must be an absolute path to a PEM file; got '${path}'`);

/** An rtmp:// or rtmps:// input URL as a target; the error says what to change. */
export const parseRtmpInput = (raw: string): RtmpInputTarget | OutputError => {
  const protocol = /^rtmps:/i.test(raw) ? "rtmps" : /^rtmp:/i.test(raw) ? "rtmp" : null;
  if (protocol === null) return invalid("an RTMP input URL starts with rtmp:// or rtmps://");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return (
      ipv6HostProblem(raw) ??
      invalid(
        `'${protocol}' URL could not be parsed; expected ${protocol}://0.0.0.0:1935/app/key or ${protocol}://[::]:1935/app/key`,
      )
    );
  }
  if (url.username !== "" || url.password !== "")
    return invalid("user names and passwords in the URL are not supported");
  if (url.hash !== "") return invalid("the URL has a '#' fragment; write '#' inside a value as %23");
  const hostProblem = checkHost(url.hostname);
  if (hostProblem !== null) return hostProblem;
  const port = parsePort(url.port, protocol === "rtmp" ? 1935 : 443);
  if (port instanceof OutputError) return port;
  const params = readParams(url, ["key", "cert", "certkey"]);
  if (params instanceof OutputError) return params;
  const segments = url.pathname.split("/").filter((segment) => segment !== "");
  const keyParam = params.get("key");
  let app: string;
  let key: string;
  if (keyParam !== undefined) {
    if (segments.length === 0)
      return invalid(
        `an ${protocol} input URL names its application: ${protocol}://0.0.0.0:1935/live?key=...`,
      );
    app = segments.map(decoded).join("/");
    key = keyParam;
  } else {
    if (segments.length < 2)
      return invalid(
        `an ${protocol} input URL needs an application and a stream key: ${protocol}://0.0.0.0:1935/live/KEY or ${protocol}://0.0.0.0:1935/live?key=KEY`,
      );
    app = segments.slice(0, -1).map(decoded).join("/");
    key = decoded(segments.at(-1) ?? "");
  }
  if (key === "" || key === "****") return invalid("the stream key is empty");
  if (key.includes("?") || key.includes("/")) return invalid("the stream key may not contain '?' or '/'");
  const cert = params.get("cert") ?? null;
  const certKey = params.get("certkey") ?? null;
  if (protocol === "rtmp" && (cert !== null || certKey !== null))
    return invalid("cert and certkey apply to rtmps:// only (an RTMPS input shows that certificate)");
  if (protocol === "rtmps" && (cert === null || certKey === null))
    return invalid("an rtmps:// input needs its certificate: cert=/path/cert.pem&certkey=/path/key.pem");
  for (const [name, path] of [
    ["cert", cert],
    ["certkey", certKey],
  ] as const) {
    if (path === null) continue;
    const problem = absolute(name, path);
    if (problem instanceof OutputError) return problem;
  }
  const query = rawQuery(raw);
  const shownQuery =
    query === ""
      ? ""
      : `?${query
          .split("&")
          .map((piece) => (decoded(piece.split("=")[0] ?? "") === "key" ? "key=****" : piece))
          .join("&")}`;
  const path = beforeQuery(raw);
  const shownPath = keyParam !== undefined ? path : `${path.slice(0, path.lastIndexOf("/") + 1)}****`;
  return {
    protocol,
    host: bareHost(url.hostname),
    port,
    app,
    key: Redacted.make(key),
    certFile: cert,
    certKeyFile: certKey,
    secrets: [Redacted.make(key)],
    masked: `${shownPath}${shownQuery}`,
  };
};
