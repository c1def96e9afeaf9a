// Loaded with --require into a benchmarked process: reports its peak RSS when it exits.
const fs = require("node:fs")
process.on("exit", () => {
  fs.writeSync(2, `BENCH_MAXRSS_KB ${process.resourceUsage().maxRSS}\n`)
})
