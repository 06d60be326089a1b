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
import { createHash } from 'node:crypto'
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
import type {
  ActionTemplate,
  convertActionTemplate,
  parseAction
} from '@actions/workflow-parser/actions/index'
import type * as Expressions from '@actions/expressions'

const ROOT = resolve(import.meta.dirname, '..', '..')
const PKG = join(ROOT, 'node_modules', '@actions', 'workflow-parser')

/** What the tests use from the parser (typed from the package's own declarations). */
export interface WorkflowParser {
  parseWorkflow: typeof parseWorkflow
  convertWorkflowTemplate: typeof convertWorkflowTemplate
  NoOperationTraceWriter: typeof NoOperationTraceWriter
  parseAction: typeof parseAction
  convertActionTemplate: typeof convertActionTemplate
  /** GitHub's expression language (the parser's own dependency), to evaluate `${{ … }}` */
  expressions: typeof Expressions
}

export type { ActionTemplate, TemplateParseResult, TraceWriter, WorkflowTemplate }

/**
 * The bundle's entry: the package's main API, its action.yml parser (not exported from the main) and the
 * expression language it depends on.
 */
const ENTRY =
  "export * from './dist/index.js'\n" +
  "export { parseAction, convertActionTemplate } from './dist/actions/index.js'\n" +
  "export * as expressions from '@actions/expressions'\n"

/** Path of the CommonJS bundle of the installed parser version (built if missing). */
export function workflowParserBundle(): string {
  const version = (JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')) as { version: string }).version
  const hash = createHash('sha256').update(ENTRY).digest('hex').slice(0, 8)
  const out = join(ROOT, 'build', `workflow-parser-${version}-${hash}.cjs`)
  if (existsSync(out)) return out
  mkdirSync(join(ROOT, 'build'), { recursive: true })
  const tmp = `${out}.${process.pid}.tmp`
  try {
    execFileSync(
      join(ROOT, 'node_modules', '.bin', 'esbuild'),
      [
        '--bundle',
        '--sourcefile=shipline-workflow-parser-entry.js',
        '--format=cjs',
        '--platform=node',
        '--target=node20',
        '--log-level=warning',
        `--outfile=${tmp}`
      ],
      // stdin's imports resolve from the working directory: the package's own folder
      { cwd: PKG, input: ENTRY, stdio: ['pipe', 'inherit', 'inherit'] }
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

/** Errors GitHub's parser finds in one action.yml, and the action as GitHub reads it. */
export function actionErrors(
  name: string,
  content: string
): { errors: string[]; action: ActionTemplate | undefined } {
  const p = loadWorkflowParser()
  const result = p.parseAction({ name, content }, new p.NoOperationTraceWriter())
  const action = result.value ? p.convertActionTemplate(result.context, result.value) : undefined
  return { errors: result.context.errors.getErrors().map(e => e.message), action }
}

/**
 * A workflow value with every `${{ … }}` evaluated by GitHub's expression evaluator against `context`
 * (plain JSON: `{ github: {…}, inputs: {…}, … }`), as the runner hands it to an action input.
 */
export function evaluate(value: string, context: Record<string, unknown>): string {
  const { expressions: x } = loadWorkflowParser()
  const data = JSON.parse(JSON.stringify(context), x.data.reviver) as InstanceType<typeof x.data.Dictionary>
  return value.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, body: string) => {
    const lexed = new x.Lexer(body.trim()).lex()
    const expr = new x.Parser(lexed.tokens, Object.keys(context), []).parse()
    return new x.Evaluator(expr, data).evaluate().coerceString()
  })
}
