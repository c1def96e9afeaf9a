/**
 * npm run bench:redact [-- --mb=50]
 * 1. The detector on the labelled corpus (test/helpers/privacyCorpus.ts): strict recall and false-positive
 *    rate overall and per kind, as a Markdown table for README.
 * 2. Its throughput in MB/s on what ingest feeds it: DotClaw trace text (messages, replies, memory, tool
 *    arguments as JSON), 2% of turns carrying a secret, and the corpus texts themselves.
 */
import { emptyFindings, redactText } from "../src/privacy/Redactor.js"
import { privacyCorpus, scoreCorpus } from "../test/helpers/privacyCorpus.js"
import { traceObject } from "../test/helpers/traces.js"
import { arg, machine } from "./util.js"

const corpus = privacyCorpus()
const score = scoreCorpus(corpus, (t) => redactText(t))
const pct = (x: number) => `${(x * 100).toFixed(1)}%`
console.log(`machine: ${machine()}`)
console.log(`corpus: ${corpus.length} texts, ${score.kinds.filter((k) => k.positive).length} positive kinds, ${score.kinds.filter((k) => !k.positive).length} negative kinds`)
console.log(`strict recall ${score.recall.toFixed(3)}, false-positive rate ${score.falsePositiveRate.toFixed(3)}\n`)
console.log("| kind | n | found |\n|---|---|---|")
for (const k of score.kinds.filter((k) => k.positive)) console.log(`| ${k.kind} | ${k.n} | ${pct(k.rate)} |`)
console.log("\n| look-alike | n | left intact |\n|---|---|---|")
for (const k of score.kinds.filter((k) => !k.positive)) console.log(`| ${k.kind} | ${k.n} | ${pct(k.rate)} |`)

// Throughput on trace text as ingest sees it.
const targetBytes = arg("mb", 50) * 1e6
const texts: Array<string> = []
let bytes = 0
for (let i = 0; bytes < targetBytes; i++) {
  const secret = i % 50 === 0 ? corpus[i % corpus.length]!.text : undefined
  const t = traceObject(i, { ...(secret === undefined ? {} : { text: secret }) })
  for (const s of [t.input_text, t.output_text ?? "", t.memory_summary, ...t.memory_facts, ...t.memory_recall, JSON.stringify(t.tool_calls)]) {
    texts.push(s)
    bytes += Buffer.byteLength(s)
  }
}
for (let i = 0; i < 2000; i++) redactText(texts[i]!) // warm up
const findings = emptyFindings()
const started = process.hrtime.bigint()
for (const t of texts) redactText(t, findings)
const seconds = Number(process.hrtime.bigint() - started) / 1e9
console.log(`\nthroughput: ${(bytes / 1e6).toFixed(1)} MB of trace text in ${seconds.toFixed(2)} s = ${(bytes / 1e6 / seconds).toFixed(1)} MB/s (${texts.length} strings, ${findings.count} values replaced)`)
