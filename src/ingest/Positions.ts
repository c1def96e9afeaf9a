/**
 * Where each trace file was read up to, per host: saved with every committed batch, so a killed run resumes
 * where the last transaction ended. A file that shrank or was replaced (its inode or its first bytes changed)
 * is read again from the start.
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import type * as fs from "node:fs"
import type { AppConfig } from "../config/Table.js"
import { storeError } from "../store/Db.js"
import { fileError } from "./Batch.js"

export const POSITION_COLUMNS = ["host_id", "file", "file_id", "byte_offset", "line_no", "head_hash", "updated_at"] as const
export const POSITION_CONFLICT = `ON CONFLICT (host_id, file) DO UPDATE SET file_id = excluded.file_id, byte_offset = excluded.byte_offset,
  line_no = excluded.line_no, head_hash = excluded.head_hash, updated_at = excluded.updated_at`
export const UPSERT_POSITION = `INSERT INTO ingest_positions (${POSITION_COLUMNS.join(", ")}) VALUES (${POSITION_COLUMNS.map(() => "?").join(", ")})
  ${POSITION_CONFLICT}`
const HEAD_BYTES = 512

/** Where reading a file starts. */
export interface From {
  readonly byteOffset: number
  readonly lineNo: number
}

export interface Position {
  readonly fileId: string
  readonly byteOffset: number
  readonly lineNo: number
  readonly headHash: string
}

const headHash = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex").slice(0, 16)

export const makePositions = ({ sql, config }: { readonly sql: SqlClient.SqlClient; readonly config: AppConfig }) => {
  const positionRow = (file: string, next: Position, now: number): Record<(typeof POSITION_COLUMNS)[number], string | number> =>
    ({ host_id: config.hostId, file, file_id: next.fileId, byte_offset: next.byteOffset, line_no: next.lineNo, head_hash: next.headHash, updated_at: now })
  const positionValues = (file: string, next: Position, now: number) => {
    const row = positionRow(file, next, now)
    return POSITION_COLUMNS.map((c) => row[c])
  }

  const savedPosition = (file: string) =>
    sql<{ fileId: string; byteOffset: number; lineNo: number; headHash: string }>`
      SELECT file_id AS "fileId", byte_offset AS "byteOffset", line_no AS "lineNo", head_hash AS "headHash"
      FROM ingest_positions WHERE host_id = ${config.hostId} AND file = ${file}`.pipe(
      Effect.map((rows) => rows[0]),
      Effect.mapError(storeError("read ingest positions"))
    )

  /**
   * Where to resume: the saved offset, or 0 when the file shrank, was replaced, or was never seen.
   * The head hash covers the first bytes already consumed, so appends never change it.
   */
  const startPosition = (file: string, handle: fs.promises.FileHandle, stat: fs.Stats) =>
    Effect.gen(function* () {
      const fileId = `${stat.dev}:${stat.ino}`
      const saved = yield* savedPosition(file)
      const head = Buffer.alloc(Math.min(HEAD_BYTES, stat.size))
      yield* Effect.tryPromise({ try: () => handle.read(head, 0, head.length, 0), catch: fileError(file, "read") })
      const hashAt = (offset: number) => headHash(head.subarray(0, Math.min(HEAD_BYTES, offset)))
      if (saved === undefined) return { fileId, byteOffset: 0, lineNo: 0, restarted: false, hashAt }
      const same = saved.fileId === fileId && saved.byteOffset <= stat.size && saved.headHash === hashAt(saved.byteOffset)
      if (same) return { fileId, byteOffset: saved.byteOffset, lineNo: saved.lineNo, restarted: false, hashAt }
      return { fileId, byteOffset: 0, lineNo: 0, restarted: saved.byteOffset > 0, hashAt }
    })

  return { positionRow, positionValues, savedPosition, startPosition } as const
}
