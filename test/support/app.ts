/**
 * The app as tests use it: the real Channels supervisor, the memory store (or a file store), a known admin
 * token, and pino writing into an array so tests can read every log line. Also loopback UDP sources and sinks.
 */
import { createSocket } from "node:dgram";
import { Writable } from "node:stream";
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { DocumentStore, layerMemory } from "../../src/effects/config/store.ts";
import { PinoLoggerLive } from "../../src/effects/events/logging.ts";
import { ServicesTest } from "../../src/effects/services.ts";
import { Readiness } from "../../src/effects/status/readiness.ts";
import { makeApp } from "../../src/http/app.ts";
import { closeWebSockets, listen } from "../../src/http/server.ts";
import * as peers from "./peers.ts";
import { chunkTs } from "./sender.ts";
import { TsGenerator } from "./ts-generator.ts";

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";

export interface TestApp {
  readonly request: (
    path: string,
    init?: RequestInit & { readonly token?: string | null },
  ) => Promise<Response>;
  readonly logs: ReadonlyArray<string>;
  readonly storeText: () => Promise<string | undefined>;
  /** Listens on 127.0.0.1 (on `port`, by default any free one); resolves to the port. */
  readonly listen: (port?: number) => Promise<number>;
  readonly close: () => Promise<void>;
}

export const makeTestApp = async (
  storeLayer: Layer.Layer<DocumentStore, unknown> = layerMemory,
  /** Extra services or references, e.g. `Layer.succeed(ChannelFaults, …)`. */
  extra: Layer.Layer<never> = Layer.empty,
  /** Settings as environment variables would give them, e.g. `DISTRIBUTARY_METRICS_AUTH`. */
  settings: Readonly<Record<string, string>> = {},
): Promise<TestApp> => {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const store = Layer.orDie(storeLayer);
  const layer = ServicesTest(ADMIN_TOKEN, store, settings).pipe(
    Layer.provide(extra),
    Layer.provide(PinoLoggerLive(sink)),
  );
  const runtime = ManagedRuntime.make(layer);
  const scope = await runtime.runPromise(Scope.make());
  const handle = await runtime.runPromise(Scope.extend(makeApp(), scope));
  const readiness = await runtime.runPromise(Readiness);
  await eventually("the control plane to be ready", () => (readiness.ready() ? true : undefined));
  return {
    request: (path, init = {}) => {
      const { token = ADMIN_TOKEN, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token !== null) headers.set("authorization", `Bearer ${token}`);
      if (rest.body !== undefined && !headers.has("content-type"))
        headers.set("content-type", "application/json");
      return Promise.resolve(handle.app.request(path, { ...rest, headers }));
    },
    logs,
    storeText: () =>
      runtime.runPromise(
        Effect.flatMap(DocumentStore, (documents) => Effect.orDie(documents.read("channels.json"))).pipe(
          Effect.map((text) => (text._tag === "Some" ? text.value : undefined)),
        ),
      ),
    listen: (port = 0) =>
      runtime.runPromise(
        Effect.gen(function* () {
          const server = yield* listen(handle.app, { port, hostname: "127.0.0.1" });
          handle.injectWebSocket(server);
          yield* Scope.addFinalizer(scope, closeWebSockets(handle.webSockets));
          const address = server.address();
          return typeof address === "object" && address !== null ? address.port : 0;
        }).pipe(Scope.extend(scope)),
      ),
    close: async () => {
      await runtime.runPromise(Scope.close(scope, Exit.void));
      await runtime.dispose();
    },
  };
};

export interface TestAppOptions {
  readonly store?: Layer.Layer<DocumentStore, unknown>;
  readonly extra?: Layer.Layer<never>;
  readonly settings?: Readonly<Record<string, string>>;
}

/**
 * The prologue of a file whose tests share one app: made in `beforeAll`, closed in `afterAll`. What it returns
 * stands for that app (each call goes to it), so the tests read `app.request(…)` as they would with
 * `makeTestApp`. Options may be a function, called when the app is made, for settings known only then.
 * Registered first, its `afterAll` runs after the file's own (Vitest runs them as a stack).
 */
export const useTestApp = (options: TestAppOptions | (() => TestAppOptions) = {}): TestApp => {
  let current: TestApp | undefined;
  const app = (): TestApp => {
    if (current === undefined) throw new Error("the app of useTestApp exists from beforeAll to afterAll");
    return current;
  };
  beforeAll(async () => {
    const { store, extra, settings } = typeof options === "function" ? options() : options;
    current = await makeTestApp(store, extra, settings);
  });
  afterAll(async () => {
    await current?.close();
    current = undefined;
  });
  return {
    request: (path, init) => app().request(path, init),
    get logs() {
      return app().logs;
    },
    storeText: () => app().storeText(),
    listen: (port) => app().listen(port),
    close: async () => {
      await current?.close();
      current = undefined;
    },
  };
};

/**
 * The prologue of a file whose tests each make their own app and start real peers: `start(settings)` makes the
 * app and a scope for the peers (`inside` runs a peer in it); both are closed after each test.
 */
export const useAppWithPeers = () => {
  let app: TestApp | undefined;
  let scope: Scope.CloseableScope | undefined;
  afterEach(async () => {
    if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void));
    await app?.close();
    app = undefined;
    scope = undefined;
  });
  return async (settings: Readonly<Record<string, string>> = {}) => {
    app = await makeTestApp(layerMemory, Layer.empty, settings);
    const open = Effect.runSync(Scope.make());
    scope = open;
    const inside = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
      Effect.runPromise(Scope.extend(effect, open));
    return { test: app, inside };
  };
};

/** The login page's form as a browser on http://127.0.0.1 posts it: no bearer token, the page's own origin. */
export const loginForm = (fields: { readonly token: string; readonly next?: string }) => ({
  method: "POST",
  token: null,
  headers: {
    host: "127.0.0.1",
    origin: "http://127.0.0.1",
    "content-type": "application/x-www-form-urlencoded",
  },
  body: new URLSearchParams(fields).toString(),
  redirect: "manual" as const,
});

/** Signs in to the pages with `token` (a 303 on to `next`); the session's cookie, "name=value". */
export const loginSession = async (
  app: Pick<TestApp, "request">,
  token: string,
  next = "/",
): Promise<string> => {
  const login = await app.request("http://127.0.0.1/login", loginForm({ token, next }));
  expect(login.status).toBe(303);
  return (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
};

export const json = async (response: Response): Promise<Record<string, unknown>> =>
  (await response.json()) as Record<string, unknown>;

/** Polls until `check` returns something other than undefined (the Promise form of peers' `eventually`). */
export const eventually = <A>(
  what: string,
  check: () => A | undefined | Promise<A | undefined>,
  timeoutMs = 10_000,
  seen?: () => string,
): Promise<A> => Effect.runPromise(peers.eventually(what, check, { timeoutMs, intervalMs: 25, seen }));

export const freeUdpPort = (): Promise<number> => Effect.runPromise(peers.freeUdpPort);

export interface UdpSink {
  readonly port: number;
  readonly bytes: () => number;
  readonly close: () => Promise<void>;
}

/** peers' UDP sink outside an Effect scope: it lives until `close`. */
export const udpSink = async (): Promise<UdpSink> => {
  const scope = await Effect.runPromise(Scope.make());
  const sink = await Effect.runPromise(Scope.extend(peers.udpSink, scope));
  return {
    port: sink.port,
    bytes: sink.totalBytes,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void)),
  };
};

/** Plain UDP TS to 127.0.0.1:port, one 7-packet datagram every 5 ms, until closed. */
export const udpSource = (port: number) => {
  const socket = createSocket("udp4");
  const datagrams = chunkTs(new TsGenerator({ seed: 1, bitrate: 2_000_000 }).packets(7 * 200));
  let next = 0;
  const timer = setInterval(() => {
    const datagram = datagrams[next++ % datagrams.length];
    if (datagram !== undefined) socket.send(datagram, port, "127.0.0.1");
  }, 5);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        socket.close(() => resolve());
      }),
  };
};
