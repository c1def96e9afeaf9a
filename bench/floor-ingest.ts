/**
 * The floor for bench:ingest: the same lines JSON.parse'd and inserted through one prepared statement
 * in one transaction, with nothing else (no redaction, no normalization, no crash safety).
 */
import Database from "better-sqlite3"
import * as fs from "node:fs"
import * as path from "node:path"

const [dir, dbFile] = process.argv.slice(2) as [string, string]
const db = new Database(dbFile)
db.pragma("journal_mode = WAL")
db.exec("CREATE TABLE IF NOT EXISTS traces (trace_id TEXT PRIMARY KEY, ts TEXT, body TEXT)")
const insert = db.prepare("INSERT OR IGNORE INTO traces VALUES (?, ?, ?)")
let n = 0
const run = db.transaction(() => {
  for (const name of fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()) {
    for (const line of fs.readFileSync(path.join(dir, name), "utf8").split("\n")) {
      if (line === "") continue
      const t = JSON.parse(line) as { trace_id: string; timestamp: string }
      insert.run(t.trace_id, t.timestamp, line)
      n++
    }
  }
})
run()
db.close()
process.stdout.write(JSON.stringify({ inserted: n }) + "\n")
