/**
 * The thread that writes ingest's rows to the SQLite store (see SqliteBulk.ts): it runs the statements it is
 * sent, so the main thread parses and redacts the next lines while SQLite writes these. It holds no Effect
 * runtime and no rules: a few MB of its own, against the hundreds the main thread's modules take.
 */
import Database from "better-sqlite3"
import { parentPort, workerData } from "node:worker_threads"
import { isBusyCode, runRow } from "./BulkRows.js"
import type { FromWriter, ThreadData, ToWriter } from "./SqliteBulk.js"

const setup = workerData as ThreadData
const db = new Database(setup.filename, { fileMustExist: true })
for (const pragma of setup.pragmas) db.pragma(pragma)
const statements = setup.statements.map((text) => db.prepare(text))
const done = new Int32Array(setup.done)
/** Answers on the reply port, then counts the answer where the main thread can wait for it. */
const reply = (message: FromWriter) => {
  setup.replies.postMessage(message)
  Atomics.add(done, 0, 1)
  Atomics.notify(done, 0)
}

const nap = new Int32Array(new SharedArrayBuffer(4))
const sleep = (ms: number) => Atomics.wait(nap, 0, 0, ms)

/** BEGIN IMMEDIATE, waiting out another process's write (better-sqlite3 waits 5 s a try) for up to two minutes. */
const begin = () => {
  const until = Date.now() + 120_000
  for (let wait = 50; ; wait = Math.min(wait * 2, 5000)) {
    try {
      db.exec("BEGIN IMMEDIATE")
      return
    } catch (e) {
      if (!isBusyCode((e as { code?: unknown }).code) || Date.now() > until) throw e
      sleep(wait)
    }
  }
}

const handle = (message: ToWriter): FromWriter => {
  switch (message.type) {
    case "begin":
      begin()
      return { id: message.id, changed: [] }
    case "rows": {
      // Rows handed over after a failed statement find its transaction rolled back: they must not be written
      // one by one outside it.
      if (!db.inTransaction) throw new Error("no open transaction (an earlier statement of this batch failed)")
      const changed = statements.map(() => 0)
      for (const row of message.rows) runRow(statements, row, changed)
      return { id: message.id, changed }
    }
    case "commit":
      db.exec("COMMIT")
      return { id: message.id, changed: [] }
    case "rollback":
      if (db.inTransaction) db.exec("ROLLBACK")
      return { id: message.id, changed: [] }
  }
}

parentPort!.on("message", (message: ToWriter) => {
  try {
    reply(handle(message))
  } catch (e) {
    // SQLite rolls some failures back itself (a full disk); the rest are rolled back here, so that a failed
    // batch leaves nothing behind and the main thread can report it.
    try {
      if (db.inTransaction) db.exec("ROLLBACK")
    } catch {
      // the transaction is gone already
    }
    const error = e as { code?: unknown; message?: unknown }
    reply({
      id: message.id,
      error: { code: typeof error.code === "string" ? error.code : "", message: String(error.message ?? e) }
    })
  }
})
