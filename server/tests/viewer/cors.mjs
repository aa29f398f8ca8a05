// A script on another site's page calling the service: headless Chromium (Debian's) driven by
// playwright-core.
//   node cors.mjs <page URL> <service allowing the page's origin> <service allowing nothing>
// Opens the page (its origin is the caller), then from it: a POST with a JSON body (which the
// browser preflights) to each service, a refusal's JSON, and a progressive stream read with
// fetch. Prints one JSON line with what the page saw; exits non-zero on any failure.
import { chromium } from "playwright-core";

const [pageUrl, allowing, closed] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Root in CI containers: Chromium's sandbox needs user namespaces it may not have.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  await page.goto(pageUrl, { waitUntil: "load", timeout: 30000 });
  const seen = await page.evaluate(async ([allowing, closed]) => {
    const post = async (base) => {
      try {
        const res = await fetch(base, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ width: 8, height: 6, format: "png" }),
        });
        const bytes = new Uint8Array(await res.arrayBuffer());
        return {
          status: res.status,
          contentType: res.headers.get("content-type"),
          spp: res.headers.get("x-render-spp"),
          png: bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47,
        };
      } catch (e) {
        return { error: e.name };
      }
    };
    const refused = await fetch(allowing + "?width=0");
    const stream = await fetch(allowing + "?width=8&height=6&spp=16&progressive=1");
    const text = new TextDecoder("latin1").decode(await stream.arrayBuffer());
    return {
      origin: location.origin,
      allowed: await post(allowing),
      closed: await post(closed),
      refused: { status: refused.status, body: await refused.json() },
      frames: text.split("\r\nX-Render-Spp: ").slice(1).map((s) => Number(s.split("\r\n")[0])),
    };
  }, [allowing, closed]);
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}
