/**
 * A real headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, for the pages' tests.
 * Every request that is not to 127.0.0.1 is refused and recorded, so a test can assert that nothing leaves
 * the machine; screenshots go to test-results/ (kept as CI artifacts, not committed).
 */
import { mkdirSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const SCREENSHOTS = "test-results/screenshots";

export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    // Running as root in a container: Chromium's sandbox needs user namespaces it may not have.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });

export interface Watched {
  readonly context: BrowserContext;
  /** Requests to anywhere but 127.0.0.1, refused. */
  readonly offsite: ReadonlyArray<string>;
}

export const newContext = async (
  browser: Browser,
  options: { readonly width?: number; readonly height?: number; readonly dark?: boolean } = {},
): Promise<Watched> => {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
    colorScheme: options.dark === true ? "dark" : "light",
  });
  const offsite: string[] = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    offsite.push(url.href);
    return route.abort();
  });
  return { context, offsite };
};

export const login = async (page: Page, base: string, token: string) => {
  await page.goto(`${base}/`);
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`${base}/`);
};

/** The whole page as `name`.png, or only the element `selector` finds. */
export const screenshot = async (page: Page, name: string, selector?: string) => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = `${SCREENSHOTS}/${name}.png`;
  if (selector === undefined) await page.screenshot({ path, fullPage: true });
  else {
    // The element's place, then the page there: a live update may replace the element meanwhile (same place).
    await page.evaluate("window.scrollTo(0, 0)");
    let clip = await page.locator(selector).boundingBox();
    // Null while a live update swaps the element: the next one is there a moment later.
    for (let tries = 0; clip === null && tries < 5; tries++) {
      await page.locator(selector).waitFor();
      clip = await page.locator(selector).boundingBox();
    }
    if (clip === null) throw new Error(`screenshot ${name}: nothing on the page matches ${selector}`);
    await page.screenshot({ path, fullPage: true, clip });
  }
};

/** How far the page is wider than the window, in pixels: 0 when the layout holds (on a phone). */
export const overflowWidth = (page: Page) =>
  page.evaluate("document.documentElement.scrollWidth - window.innerWidth") as Promise<number>;
