/**
 * The ingest worker thread: reads one trace file and parses, normalizes and redacts its lines while the
 * main thread writes the previous batch to the store. It stays at most two batches ahead (each one is
 * acknowledged once committed), so memory stays bounded however large the file.
 */
import * as fs from "node:fs"
import { parentPort, workerData } from "node:worker_threads"
import { type Batch, fileBatches, type ReadEnd } from "./IngestBatch.js"

export interface WorkerJob {
  readonly file: string
  readonly redact: boolean
  readonly byteOffset: number
  readonly lineNo: number
  readonly size: number
}

export type WorkerMessage =
  | { readonly type: "batch"; readonly batch: Batch }
  | ({ readonly type: "done" } & ReadEnd)
  | { readonly type: "error"; readonly message: string }

const AHEAD = 2

const run = async (job: WorkerJob, port: NonNullable<typeof parentPort>) => {
  let sent = 0
  let acked = 0
  let wake: (() => void) | undefined
  port.on("message", () => {
    acked++
    wake?.()
    wake = undefined
  })
  const room = () => (sent - acked < AHEAD ? Promise.resolve() : new Promise<void>((resolve) => (wake = resolve)))
  const fd = fs.openSync(job.file, "r")
  try {
    const batches = fileBatches(fd, job.file, job.redact, job, job.size)
    for (let next = batches.next(); ; next = batches.next()) {
      if (next.done === true) {
        port.postMessage({ type: "done", ...next.value } satisfies WorkerMessage)
        return
      }
      await room()
      port.postMessage({ type: "batch", batch: next.value } satisfies WorkerMessage)
      sent++
    }
  } finally {
    fs.closeSync(fd)
  }
}

if (parentPort !== null) {
  const port = parentPort
  run(workerData as WorkerJob, port).catch((error: unknown) => port.postMessage({ type: "error", message: error instanceof Error ? error.message : String(error) } satisfies WorkerMessage))
}
