// The viewer page in a real browser: headless Chromium (Debian's) driven by playwright-core.
//   node viewer.mjs <page URL> <output folder> <page URL of a server with a 1 s deadline>
//                   <the same server's page URL through nginx>
//                   <page URL of a server with one render place and no queue, as s.yaml's>
// Loads the page, picks a size and spp, starts, waits for the last frame, compares the image
// element's pixels (a canvas read-back) with the one-shot PNG of the same render, and saves a
// screenshot. Prints one JSON line with what it saw; exits non-zero on any failure.
import { chromium } from "playwright-core";

const [url, out, shortUrl, proxiedUrl, onePlaceUrl] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Root in CI containers: Chromium's sandbox needs user namespaces it may not have.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = {};
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const res = await page.goto(url, { waitUntil: "load", timeout: 30000 });
  result.status = res.status();
  result.contentType = res.headers()["content-type"];
  result.title = await page.title();
  await page.fill("#width", "96");
  await page.fill("#height", "72");
  await page.fill("#spp", "64");
  await page.fill("#seed", "3");
  await page.selectOption("#engine", "fast");
  await page.click("#start");
  await page.waitForSelector("#view[data-done='1']", { timeout: 60000 });
  result.frames = (await page.getAttribute("#view", "data-frames")).split(",").map(Number);
  result.reached = await page.textContent("#reached");
  result.links = await page.$$eval("#downloads a", (as) => as.map((a) => a.getAttribute("href")));
  // The shown image against the one-shot PNG, pixel by pixel, both decoded by the browser.
  result.maxDiff = await page.evaluate(async () => {
    const pixels = (img) => {
      const c = document.createElement("canvas");
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const g = c.getContext("2d");
      g.drawImage(img, 0, 0);
      return g.getImageData(0, 0, c.width, c.height).data;
    };
    const shown = document.getElementById("view");
    const once = new Image();
    once.src = "?width=96&height=72&spp=64&engine=fast&seed=3&format=png";
    await once.decode();
    if (once.naturalWidth !== shown.naturalWidth || once.naturalHeight !== shown.naturalHeight) return 999;
    const [a, b] = [pixels(shown), pixels(once)];
    let max = 0;
    for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
    return max;
  });
  // The throughput shown is the render's own: a size field edited while it runs changes nothing
  // (96×72 at 4096 spp, 28 M samples, takes about a second).
  await page.fill("#spp", "4096");
  await page.click("#start");
  await page.fill("#width", "8192");
  await page.waitForSelector("#view[data-done='1']", { timeout: 60000 });
  result.stats = { elapsed: await page.textContent("#elapsed"), rate: await page.textContent("#rate") };
  await page.fill("#width", "96");
  // A request the form allows but the server refuses shows the server's message, naming the
  // parameter (the form's own min/max stop what is out of range before it is sent).
  await page.fill("#width", "8192");
  await page.fill("#height", "8192");
  await page.fill("#spp", "65536");
  await page.click("#start");
  await page.waitForFunction(() => document.getElementById("error").textContent.length > 0, null, { timeout: 20000 });
  result.error = await page.textContent("#error");
  await page.fill("#width", "96");
  await page.fill("#height", "72");
  await page.fill("#spp", "64");
  await page.click("#start");
  await page.waitForSelector("#view[data-done='1']", { timeout: 60000 });
  await page.screenshot({ path: `${out}/viewer.png`, fullPage: true });
  result.pageErrors = errors;
  // The URL with a query but no `format`, opened in a tab: the browser's Accept gets a PNG,
  // shown as an image (a PPM would be a download, and goto would fail).
  const tab = await browser.newPage();
  const shown = await tab.goto(`${url}?width=32&height=24&spp=4&seed=3`, { waitUntil: "load", timeout: 30000 });
  result.tab = {
    contentType: shown.headers()["content-type"],
    size: await tab.evaluate(() => {
      const img = document.images[0];
      return img ? [img.naturalWidth, img.naturalHeight] : null;
    }),
  };
  // Reloaded, the browser revalidates with the image's ETag: a 304, the image shown again.
  const reloaded = await tab.reload({ waitUntil: "load", timeout: 30000 });
  result.reloaded = {
    status: reloaded.status(),
    size: await tab.evaluate(() => {
      const img = document.images[0];
      return img ? [img.naturalWidth, img.naturalHeight] : null;
    }),
  };
  // A render the server breaks off after its first frames (its deadline) says so on the page,
  // directly (the connection aborted) and through nginx (a clean end short of the stream's
  // closing boundary).
  // A new page of `pageUrl`, rendering 256×192 at 65536 spp (minutes: longer than any wait here).
  const startLong = async (pageUrl) => {
    const p = await browser.newPage();
    await p.goto(pageUrl, { waitUntil: "load", timeout: 30000 });
    await p.fill("#width", "256");
    await p.fill("#height", "192");
    await p.fill("#spp", "65536");
    await p.click("#start");
    return p;
  };
  const brokenOff = async (pageUrl) => {
    const short = await startLong(pageUrl);
    await short.waitForFunction(() => document.getElementById("state").textContent === "failed", null, { timeout: 20000 });
    return { error: await short.textContent("#error"), frames: await short.getAttribute("#view", "data-frames") };
  };
  result.brokenOff = await brokenOff(shortUrl);
  result.brokenOffProxied = await brokenOff(proxiedUrl);
  // "Render" pressed again while a render runs, on an instance as s.yaml runs one (one place, no
  // queue): the page breaks off the first stream and asks at once, while that render is still
  // stopping; the second is served and shown, not refused as busy.
  const again = await startLong(onePlaceUrl);
  await again.waitForFunction(() => document.getElementById("state").textContent === "refining", null, { timeout: 20000 });
  await again.fill("#spp", "16");
  await again.click("#start");
  await again.waitForFunction(
    () => document.getElementById("view").dataset.done === "1" || document.getElementById("state").textContent === "failed",
    null,
    { timeout: 30000 },
  );
  result.renderAgain = {
    state: await again.textContent("#state"),
    error: await again.textContent("#error"),
    frames: await again.getAttribute("#view", "data-frames"),
  };
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
