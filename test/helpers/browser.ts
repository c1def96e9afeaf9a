import * as fs from "node:fs"
import { chromium, type Browser } from "playwright-core"

/** Debian's chromium (`.ci/run` installs it); CHROMIUM_PATH points elsewhere. No browser is ever downloaded. */
export const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"

export const launchChromium = async (): Promise<Browser> => {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium package (.ci/run does) or set CHROMIUM_PATH`)
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Without the background-networking switches Chromium keeps trying to reach Google's hosts.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })
}

export interface PageCheck {
  /** Errors and warnings (the chart library warns about charts it cannot draw right). */
  readonly consoleErrors: ReadonlyArray<string>
  /** Every request that was not file: or data: (all blocked). */
  readonly external: ReadonlyArray<string>
  /** Per chart slot (data-chart/data-behavior): marks drawn in its SVG. */
  readonly charts: ReadonlyArray<{
    readonly chart: string
    readonly behavior: string | null
    readonly svgs: number
    readonly marks: number
    readonly xDomain: string | null
  }>
  readonly text: string
}

/** Opens a report file with every non-file request blocked and reads what was drawn; optionally a screenshot. */
export const openReport = async (
  browser: Browser,
  file: string,
  options: { width: number; dark?: boolean; screenshot?: string }
): Promise<PageCheck> => {
  const context = await browser.newContext({
    viewport: { width: options.width, height: 900 },
    colorScheme: options.dark === true ? "dark" : "light"
  })
  const page = await context.newPage()
  const consoleErrors: Array<string> = []
  const external: Array<string> = []
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") consoleErrors.push(m.text())
  })
  page.on("pageerror", (e) => consoleErrors.push(String(e)))
  await context.route("**/*", (route) => {
    const url = route.request().url()
    if (url.startsWith("file:") || url.startsWith("data:")) return route.continue()
    external.push(url)
    return route.abort()
  })
  await page.goto(`file://${file}`, { waitUntil: "load" })
  const charts = await page.$$eval("figure[data-chart]", (figs) =>
    figs.map((f) => ({
      chart: f.getAttribute("data-chart") ?? "",
      behavior: f.getAttribute("data-behavior"),
      svgs: f.querySelectorAll(".chart svg").length,
      // The day axis drawn (start/end as ISO times), for charts by day.
      xDomain: f.querySelector(".chart")?.getAttribute("data-x-domain") ?? null,
      // Plot labels each mark's group: lines, dots, areas, bars and rules drawn from data.
      marks: f.querySelectorAll(
        ".chart svg [aria-label] path, .chart svg [aria-label] circle, .chart svg [aria-label] rect, .chart svg [aria-label] line"
      ).length
    }))
  )
  const text = await page.innerText("body")
  if (options.screenshot !== undefined) await page.screenshot({ path: options.screenshot, fullPage: false })
  await context.close()
  return { consoleErrors, external, charts, text }
}
