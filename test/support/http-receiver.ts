/**
 * A real HTTP receiver on 127.0.0.1 for what the service posts (notifications): it keeps every request (path,
 * headers, body, when it came) and answers each as `answer` says — a status, after a delay, with headers — so a
 * test can play a receiver that fails, redirects, is gone or is slow.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import { type AddressInfo, createServer as createNetServer } from "node:net";

export interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** Date.now() when the request's body had arrived. */
  readonly at: number;
}

export interface Answer {
  readonly status: number;
  readonly delayMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface HttpReceiver {
  readonly url: string;
  readonly port: number;
  readonly received: ReadonlyArray<Received>;
  close: () => Promise<void>;
}

/** `answer` is called with the request's index (0 for the first) and the request. */
export const httpReceiver = async (
  answer: (index: number, request: Received) => Answer = () => ({ status: 200 }),
): Promise<HttpReceiver> => {
  const received: Received[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const entry = {
        path: request.url ?? "",
        headers: request.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      };
      const { status, delayMs = 0, headers = {} } = answer(received.length, entry);
      received.push(entry);
      const send = () => {
        response.writeHead(status, headers);
        response.end(status === 204 ? undefined : `{"status":${status}}`);
      };
      if (delayMs === 0) send();
      else {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send();
        }, delayMs);
        timers.add(timer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};

/** A port on 127.0.0.1 that nothing listens on (taken from the OS, then closed): a receiver that is down. */
export const closedPort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
