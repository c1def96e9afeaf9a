/**
 * How a long stage shows it is alive: a one-line bar on stderr when it is a terminal. Here, not in cli/, because
 * the pipeline's stages report their own progress whether the CLI or the library started them.
 */
const stderrIsTty = () => process.stderr.isTTY === true

/** A one-line progress bar on stderr, only on a TTY; a no-op under systemd and in scripts. */
export const makeProgress = (label: string, enabled = stderrIsTty()) => {
  let last = 0
  let shown = false
  return {
    update: (done: number, total: number, detail = "") => {
      if (!enabled || total <= 0) return
      const now = Date.now()
      if (now - last < 100 && done < total) return
      last = now
      shown = true
      const width = 30
      const ratio = Math.min(1, done / total)
      const bar = "#".repeat(Math.round(ratio * width)).padEnd(width, ".")
      process.stderr.write(
        `\r${label} [${bar}] ${(ratio * 100).toFixed(0).padStart(3)}% ${detail}`
          .slice(0, (process.stderr.columns ?? 100) - 1)
          .padEnd(20)
      )
    },
    done: () => {
      if (enabled && shown) process.stderr.write("\r\x1b[K")
    }
  }
}
