/// <reference lib="dom" />
import { existsSync } from "node:fs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";

// The browser tests' Chromium: gptme's own web UI, unmodified, is the test of every
// browser-facing feature.

/** Debian's Chromium, which .ci/run installs (apt-get install chromium). */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether Chromium is here for `what`; when it is not, says so: a test is never skipped silently. */
export function chromiumFor(what: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  console.warn(`SKIP ${what}: no Chromium at ${CHROMIUM} (Debian: apt-get install chromium)`);
  return false;
}

/** Headless Chromium as the tests run it: as root in CI (no sandbox), no GPU, no QUIC, nothing in the background. */
export function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * In gptme's web UI showing an instance: past the first visit's welcome dialog, with the
 * gptme-server's echo model selected, sends `message` and waits for its echo to show.
 */
export async function chatWithEcho(page: Page, message: string, timeoutMs: number): Promise<void> {
  await (await page.waitForSelector("::-p-text(Skip for now)", { timeout: 10_000 }))?.click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="model-selector"]')?.textContent?.includes("echo"),
    { timeout: 10_000 },
  );
  await page.type('[data-testid="chat-input"]', message);
  await page.keyboard.press("Enter");
  await page.waitForFunction(
    (expected: string) => (document.body.textContent ?? "").includes(expected),
    { timeout: timeoutMs },
    `Echo: ${message}`,
  );
}
