/**
 * How the report writes times, versions and evidence, pure. The page's own script runs the same functions
 * (Client.ts embeds their source), so what the tests assert here is what a person sees in the charts. They
 * reference nothing outside themselves and use nothing a 2017 browser lacks.
 */

/**
 * The x domain of a chart by day: whole UTC days from the first day with data (at least a week back) to the
 * end of today, the day the page was generated. Never past today: one day of data is a day, not a week ahead.
 */
export function dayDomain(firstDayMs: number, nowMs: number): [number, number] {
  const DAY = 86400000
  const today = Math.floor(nowMs / DAY) * DAY
  const first = Math.floor(firstDayMs / DAY) * DAY
  return [Math.min(first, today - 6 * DAY), today + DAY]
}

/**
 * A pack version short enough for a table cell or a legend: autotune's `v20261206T061730533Z-1229` becomes
 * `v1206-0617·1229` (month, day, hour and minute, and the id's own suffix); another version over 24
 * characters keeps its start and end. The full id goes beside it in a title.
 */
export function shortVersion(version: string): string {
  const m = /^v\d{4}(\d{2})(\d{2})T(\d{2})(\d{2})\d*Z-(\w+)$/.exec(version)
  if (m) return "v" + m[1] + m[2] + "-" + m[3] + m[4] + "\u00b7" + m[5]
  return version.length <= 24 ? version : version.slice(0, 14) + "\u2026" + version.slice(-8)
}
