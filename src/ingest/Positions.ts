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
import {
  type FilePosition,
  positionRow as positionRowOf,
  positionValues as positionValuesOf,
  savedPosition as savedPositionOf
} from "../store/TraceRows.js"
import type { FileError, StoreError } from "../Domain/Errors.js"
import { fileError } from "./Batch.js"

const HEAD_BYTES = 512

/** Where reading a file starts. */
export interface From {
  readonly byteOffset: number
  readonly lineNo: number
}

export type Position = FilePosition

const headHash = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex").slice(0, 16)

/** Where a file's reading resumes: its position, and the hash of its head up to any offset. */
export interface StartPosition extends From {
  readonly fileId: string
  /** The saved position no longer fits the file (shrunk or replaced): it is read again from the start. */
  readonly restarted: boolean
  readonly hashAt: (offset: number) => string
}

/** This host's file positions: the rows to save, and where to resume a file. */
export interface Positions {
  readonly positionRow: (file: string, next: Position, now: number) => Record<string, string | number>
  readonly positionValues: (file: string, next: Position, now: number) => Array<string | number>
  readonly savedPosition: (file: string) => Effect.Effect<FilePosition | undefined, StoreError>
  readonly startPosition: (
    file: string,
    handle: fs.promises.FileHandle,
    stat: fs.Stats
  ) => Effect.Effect<StartPosition, StoreError | FileError>
}

export const makePositions = ({
  sql,
  config
}: {
  readonly sql: SqlClient.SqlClient
  readonly config: AppConfig
}): Positions => {
  const positionRow = (file: string, next: Position, now: number) => positionRowOf(config.hostId, file, next, now)
  const positionValues = (file: string, next: Position, now: number) => positionValuesOf(config.hostId, file, next, now)
  const savedPosition = (file: string) => savedPositionOf(sql, config.hostId, file)

  /**
   * Where to resume: the saved offset, or 0 when the file shrank, was replaced, or was never seen.
   * The head hash covers the first bytes already consumed, so appends never change it.
   */
  const startPosition = (file: string, handle: fs.promises.FileHandle, stat: fs.Stats) =>
    Effect.gen(function* (): Effect.fn.Return<StartPosition, StoreError | FileError> {
      const fileId = `${stat.dev}:${stat.ino}`
      const saved = yield* savedPosition(file)
      const head = Buffer.alloc(Math.min(HEAD_BYTES, stat.size))
      yield* Effect.tryPromise({ try: () => handle.read(head, 0, head.length, 0), catch: fileError(file, "read") })
      const hashAt = (offset: number) => headHash(head.subarray(0, Math.min(HEAD_BYTES, offset)))
      if (saved === undefined) return { fileId, byteOffset: 0, lineNo: 0, restarted: false, hashAt }
      const same =
        saved.fileId === fileId && saved.byteOffset <= stat.size && saved.headHash === hashAt(saved.byteOffset)
      if (same) return { fileId, byteOffset: saved.byteOffset, lineNo: saved.lineNo, restarted: false, hashAt }
      return { fileId, byteOffset: 0, lineNo: 0, restarted: saved.byteOffset > 0, hashAt }
    })

  return { positionRow, positionValues, savedPosition, startPosition }
}
