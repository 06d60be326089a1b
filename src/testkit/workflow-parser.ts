/**
 * Loads GitHub's own workflow parser, `@actions/workflow-parser`, for the tests.
 *
 * The package ships ESM that imports its JSON schemas without import attributes, which neither Node's ESM
 * loader nor Jest's accept. So it is bundled once with esbuild into a CommonJS file under build/
 * (gitignored, never dist/) and loaded with createRequire. The bundle is made on demand, named after the
 * installed version, and written to a temporary name first, then renamed: two test runs at once on one
 * machine never read a half-written file, and a clean clone needs no extra step.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import type {
  NoOperationTraceWriter,
  TemplateParseResult,
  TraceWriter,
  WorkflowTemplate,
  convertWorkflowTemplate,
  parseWorkflow
} from '@actions/workflow-parser'

const ROOT = resolve(import.meta.dirname, '..', '..')
const PKG = join(ROOT, 'node_modules', '@actions', 'workflow-parser')

/** What the tests use from the parser (typed from the package's own declarations). */
export interface WorkflowParser {
  parseWorkflow: typeof parseWorkflow
  convertWorkflowTemplate: typeof convertWorkflowTemplate
  NoOperationTraceWriter: typeof NoOperationTraceWriter
}

export type { TemplateParseResult, TraceWriter, WorkflowTemplate }

/** Path of the CommonJS bundle of the installed parser version (built if missing). */
export function workflowParserBundle(): string {
  const version = (JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')) as { version: string }).version
  const out = join(ROOT, 'build', `workflow-parser-${version}.cjs`)
  if (existsSync(out)) return out
  mkdirSync(join(ROOT, 'build'), { recursive: true })
  const tmp = `${out}.${process.pid}.tmp`
  try {
    execFileSync(
      join(ROOT, 'node_modules', '.bin', 'esbuild'),
      [
        join(PKG, 'dist', 'index.js'),
        '--bundle',
        '--format=cjs',
        '--platform=node',
        '--target=node20',
        '--log-level=warning',
        `--outfile=${tmp}`
      ],
      { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] }
    )
    renameSync(tmp, out)
  } finally {
    rmSync(tmp, { force: true })
  }
  return out
}

let loaded: WorkflowParser | undefined

/** GitHub's workflow parser, bundled on first use. */
export function loadWorkflowParser(): WorkflowParser {
  loaded ??= createRequire(import.meta.url)(workflowParserBundle()) as WorkflowParser
  return loaded
}

/** Errors the parser finds in one workflow file: schema, expressions, then conversion (needs, cron, …). */
export async function workflowErrors(name: string, content: string): Promise<string[]> {
  const p = loadWorkflowParser()
  const result = p.parseWorkflow({ name, content }, new p.NoOperationTraceWriter())
  const errors = result.context.errors.getErrors().map(e => e.message)
  if (errors.length || !result.value) return errors.length ? errors : [`${name}: nothing parsed`]
  const template = await p.convertWorkflowTemplate(result.context, result.value)
  return [
    ...result.context.errors.getErrors().map(e => e.message),
    ...(template.errors ?? []).map(e => e.Message)
  ].filter((m, i, all) => all.indexOf(m) === i)
}
