/**
 * A recording proxy in front of moto_server: every request the service sends to "AWS" passes through it and is
 * written down with the wall-clock time it arrived (method, path), before it goes on to moto unchanged. A test
 * reads when StartChannel and StopChannel were asked, and how many times — moto's own log has whole seconds.
 */
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

export interface MotoRequest {
  /** Wall-clock ms when the request arrived. */
  readonly at: number;
  readonly method: string;
  readonly path: string;
}

export interface MotoLog {
  readonly endpoint: string;
  readonly requests: ReadonlyArray<MotoRequest>;
  /** The StartChannel (`start`) or StopChannel (`stop`) calls of a MediaLive channel. */
  readonly calls: (action: "start" | "stop", channelId: string) => ReadonlyArray<MotoRequest>;
  readonly close: () => Promise<void>;
}

export const motoLog = async (motoEndpoint: string): Promise<MotoLog> => {
  const target = new URL(motoEndpoint);
  const requests: MotoRequest[] = [];
  const server = createServer((incoming, answer) => {
    requests.push({ at: Date.now(), method: incoming.method ?? "", path: incoming.url ?? "" });
    const forwarded = request(
      {
        host: target.hostname,
        port: target.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (reply) => {
        answer.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(answer);
      },
    );
    forwarded.on("error", () => answer.destroy());
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    calls: (action, channelId) =>
      requests.filter(
        (entry) => entry.method === "POST" && entry.path.endsWith(`/channels/${channelId}/${action}`),
      ),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};
