/**
 * The HTTP surface as an attacker on the network meets it: oversized page posts refused before they are read,
 * `next` that cannot leave the service after a login, token guessing limited on /login and /hls as on the
 * API (and answers that say nothing about the tokens they refuse), the pages' WebSocket only for the pages'
 * own origin, a Content-Security-Policy on pages, 404 and 405 problems under /api, and only viewer tokens in
 * /ws's URL.
 */
import { connect } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ADMIN_TOKEN,
  freeUdpPort,
  json,
  loginForm,
  loginSession,
  makeTestApp,
  useTestApp,
} from "../support/app.ts";
import { launchChromium, login, newContext } from "../support/browser.ts";

const app = useTestApp();
let port = 0;
let viewer = "";
let operator = "";
beforeAll(async () => {
  port = await app.listen();
  const token = async (name: string, role: string) =>
    String(
      (await json(await app.request("/api/tokens", { method: "POST", body: JSON.stringify({ name, role }) })))
        .token,
    );
  viewer = await token("player", "viewer");
  operator = await token("desk", "operator");
});

/**
 * Sends a request's head, then its body a chunk at a time while the server has not answered, up to
 * `atMost` bytes; resolves to the answer's status line and how much of the body was sent before it came.
 */
const postSlowly = (head: string, options: { readonly chunked: boolean; readonly atMost: number }) =>
  new Promise<{ status: string; sentBeforeAnswer: number; text: string }>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const piece = Buffer.alloc(8 * 1024, "a");
    let sent = 0;
    let answer = "";
    let answeredAt: number | null = null;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer after sending ${sent} bytes of the body`));
    }, 10_000);
    // Paced as a slow client sends, so that what was sent before the answer is what the server could have read.
    const pump = () => {
      if (answeredAt !== null || sent >= options.atMost) return;
      const frame = options.chunked
        ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")])
        : piece;
      sent += piece.length;
      socket.write(frame, () => setTimeout(pump, 5));
    };
    socket.on("connect", () => {
      socket.write(head);
      pump();
    });
    socket.on("data", (data) => {
      answeredAt ??= sent;
      answer += data.toString("latin1");
      if (answer.includes("\r\n\r\n") && answer.length > answer.indexOf("\r\n\r\n") + 4) {
        clearTimeout(timer);
        socket.destroy();
        resolve({
          status: answer.split("\r\n")[0] ?? "",
          sentBeforeAnswer: answeredAt,
          text: answer.slice(answer.indexOf("\r\n\r\n") + 4),
        });
      }
    });
    socket.on("error", () => {});
  });

describe("page posts have a body limit, checked before the body is read", () => {
  const head = (path: string, length: string | null, extra = "") =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\n` +
    `Content-Type: application/x-www-form-urlencoded\r\n${extra}` +
    (length === null ? "Transfer-Encoding: chunked\r\n" : `Content-Length: ${length}\r\n`) +
    "\r\n";

  it("a 100 MiB login form is answered 413 at once, with the limit in words", async () => {
    const answer = await postSlowly(head("/login", String(100 * 1024 * 1024)), {
      chunked: false,
      atMost: 100 * 1024 * 1024,
    });
    expect(answer.status).toBe("HTTP/1.1 413 Payload Too Large");
    expect(answer.sentBeforeAnswer).toBeLessThan(1024 * 1024);
    expect(answer.text).toContain("KiB");
  });

  it("a chunked login form is refused once it passes the limit", async () => {
    const answer = await postSlowly(head("/login", null), { chunked: true, atMost: 2 * 1024 * 1024 });
    expect(answer.status).toBe("HTTP/1.1 413 Payload Too Large");
    expect(answer.sentBeforeAnswer).toBeLessThan(1024 * 1024);
  });

  it("a channel form past a channel's limit is refused too, signed in", async () => {
    const cookie = await loginSession(app, ADMIN_TOKEN);
    const answer = await postSlowly(
      head("/channels/new", String(50 * 1024 * 1024), `Cookie: ${cookie}\r\n`),
      {
        chunked: false,
        atMost: 50 * 1024 * 1024,
      },
    );
    expect(answer.status).toBe("HTTP/1.1 413 Payload Too Large");
    expect(answer.sentBeforeAnswer).toBeLessThan(1024 * 1024);
  });
});

describe("nothing large is read before the sender is known", () => {
  const chunkedHead = (path: string, extra = "") =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\n` +
    `Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n${extra}\r\n`;

  it("the import form without a session, and the API's import without a token, are refused at once", async () => {
    for (const path of ["/settings/import", "/api/config"]) {
      const answer = await postSlowly(chunkedHead(path), { chunked: true, atMost: 2 * 1024 * 1024 });
      expect(answer.status, path).toBe("HTTP/1.1 401 Unauthorized");
      expect(answer.sentBeforeAnswer).toBeLessThan(1024 * 1024);
    }
  });
});

describe("after a login, next stays on this service", () => {
  it.each([
    "/\\evil.example/x",
    "\\\\evil.example/x",
    "/\t/evil.example/x",
    "/\n/evil.example",
    "/\\/evil.example",
    "//evil.example",
    "https:evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "/.//evil.example/x",
    "/./\\evil.example/x",
    "/%2e//evil.example/x",
    "/x/..//evil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil",
    "/%252F%252Fevil.example",
  ])("next=%j lands on this service", async (next) => {
    const login = await app.request("http://127.0.0.1/login", loginForm({ token: viewer, next }));
    expect(login.status).toBe(303);
    const location = login.headers.get("location") ?? "";
    expect(new URL(location, "http://127.0.0.1").origin).toBe("http://127.0.0.1");
    expect(location).toBe("/");
  });

  it("a path of this service is kept, query included", async () => {
    for (const [next, expected] of [
      ["/channels/news?tab=outputs", "/channels/news?tab=outputs"],
      ["/channels/./news", "/channels/news"],
    ] as const) {
      const login = await app.request("http://127.0.0.1/login", loginForm({ token: viewer, next }));
      expect(login.headers.get("location")).toBe(expected);
    }
  });
});

describe("the pages' WebSocket", () => {
  const socketOutcome = (headers: Record<string, string>) =>
    new Promise<{ messages: number; opened: boolean }>((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/ui/ws?page=overview`, { headers });
      let messages = 0;
      let opened = false;
      socket.onopen = () => {
        opened = true;
      };
      socket.onmessage = () => {
        messages += 1;
        socket.close();
      };
      socket.onclose = () => resolve({ messages, opened });
      // Snapshots come every second: three are enough to know whether any reaches this socket.
      setTimeout(() => socket.close(), 3_500);
    });

  it("serves the pages' own origin and refuses another origin or none", async () => {
    const cookie = await loginSession(app, viewer);
    const own = await socketOutcome({ cookie, origin: `http://127.0.0.1:${port}` });
    expect(own.messages).toBeGreaterThan(0);
    const otherPort = await socketOutcome({ cookie, origin: `http://127.0.0.1:${port + 1}` });
    expect(otherPort).toEqual({ messages: 0, opened: false });
    const none = await socketOutcome({ cookie });
    expect(none).toEqual({ messages: 0, opened: false });
  }, 15_000);

  it("pages carry a Content-Security-Policy that forbids framing", async () => {
    for (const path of ["/login", "/"]) {
      const cookie = await loginSession(app, viewer);
      const page = await app.request(path, { token: null, headers: { cookie } });
      expect(page.status).toBe(200);
      const policy = page.headers.get("content-security-policy") ?? "";
      expect(policy).toContain("frame-ancestors 'none'");
      expect(policy).toContain("script-src 'self'");
    }
  });
});

describe("the pages under their Content-Security-Policy, in Chromium", () => {
  it("every page loads, goes live and reports no violation", async () => {
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ id: "csp", name: "CSP", rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() }),
    });
    expect(created.status).toBe(201);
    const browser = await launchChromium();
    try {
      const { context, offsite } = await newContext(browser);
      const page = await context.newPage();
      const violations: string[] = [];
      page.on("console", (message) => {
        if (message.text().includes("Content Security Policy")) violations.push(message.text());
      });
      const base = `http://127.0.0.1:${port}`;
      await login(page, base, ADMIN_TOKEN);
      for (const path of ["/", "/channels/csp", "/events", "/settings", "/channels/new"]) {
        await page.goto(`${base}${path}`);
        if (path !== "/settings" && path !== "/channels/new")
          await expect.poll(() => page.locator("#connection").textContent()).toBe("live");
        const seen = await page.evaluate(`new Promise((resolve) => {
          const found = [];
          document.addEventListener("securitypolicyviolation", (event) => found.push(event.violatedDirective));
          setTimeout(() => resolve(found), 300);
        })`);
        expect(seen, path).toEqual([]);
      }
      expect(violations).toEqual([]);
      expect(offsite).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe("unknown paths and wrong methods under /api", () => {
  it("a wrong method on a known path is a 405 problem with Allow", async () => {
    const response = await app.request("/api/config", { method: "DELETE" });
    expect(response.status).toBe(405);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.headers.get("allow")).toBe("GET, HEAD, POST");
    expect(String((await json(response)).detail)).toContain("GET, HEAD, POST");
    const output = await app.request("/api/channels/a/outputs/b", { method: "POST" });
    expect(output.status).toBe(405);
    expect(output.headers.get("allow")).toBe("GET, HEAD, PUT, PATCH, DELETE");
  });

  it("an unknown path is a 404 problem", async () => {
    for (const path of ["/api/nothing", "/api/channels/a/nothing", "/api/"]) {
      const response = await app.request(path);
      expect(response.status, path).toBe(404);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      expect(String((await json(response)).detail)).toContain(path);
    }
    // Without a token, the token is what is missing.
    expect((await app.request("/api/nothing", { token: null })).status).toBe(401);
  });
});

describe("/ws takes only viewer tokens in its URL", () => {
  const outcome = (url: string, headers: Record<string, string> = {}) =>
    new Promise<{ code: number; reason: string; messages: number }>((resolve) => {
      const socket = new WebSocket(url, { headers });
      let messages = 0;
      socket.onmessage = () => {
        messages += 1;
        socket.close(1000);
      };
      socket.onclose = (event) => resolve({ code: event.code, reason: event.reason, messages });
    });

  it("a viewer token in the URL is served; an operator or admin token there is refused as an unknown one", async () => {
    const base = `ws://127.0.0.1:${port}/ws`;
    expect((await outcome(`${base}?token=${viewer}`)).messages).toBe(1);
    const unknown = await outcome(`${base}?token=not-a-token-at-all`);
    expect(unknown.code).toBe(4401);
    for (const token of [operator, ADMIN_TOKEN]) {
      const refused = await outcome(`${base}?token=${token}`);
      expect(refused).toEqual(unknown);
      expect(refused.reason).toContain("viewer");
    }
    // In the header, any token.
    expect((await outcome(base, { authorization: `Bearer ${ADMIN_TOKEN}` })).messages).toBe(1);
  });
});

describe("token guessing is limited on /login and /hls as on the API", () => {
  it("wrong tokens at /login count with the API's; /hls answers the same for unknown and misplaced tokens", async () => {
    const own = await makeTestApp();
    try {
      const admin = String(
        (
          await json(
            await own.request("/api/tokens", {
              method: "POST",
              body: JSON.stringify({ name: "secret-name", role: "admin" }),
            }),
          )
        ).token,
      );
      const post = (token: string) => own.request("http://127.0.0.1/login", loginForm({ token, next: "/" }));
      const hls = (token: string) => own.request(`/hls/none/web/index.m3u8?token=${token}`, { token: null });

      // An admin token in /hls's URL is refused exactly as an unknown token is, naming nobody.
      const unknownHls = await hls("guess-0");
      const adminHls = await hls(admin);
      expect(adminHls.status).toBe(unknownHls.status);
      const adminText = await adminHls.text();
      expect(adminText).toBe(await unknownHls.text());
      expect(adminText).not.toContain("secret-name");
      expect(adminText).not.toContain("admin");

      for (let n = 0; n < 8; n += 1) expect((await post(`guess-${n}`)).status).toBe(401);
      // Ten failures from this address in all (two at /hls, eight at /login): the next is limited everywhere.
      const limited = await post("guess-next");
      expect(limited.status).toBe(429);
      expect(limited.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(await limited.text()).toMatch(/too many wrong tokens/i);
      expect((await own.request("/api/channels", { token: "guess-api" })).status).toBe(429);
      expect((await hls("guess-hls")).status).toBe(429);
      expect((await hls(admin)).status).toBe(429);
      // A valid token still logs in.
      expect((await post(ADMIN_TOKEN)).status).toBe(303);
    } finally {
      await own.close();
    }
  });
});
