/**
 * GitHub's error answers (HttpError: 401/403/404/409/422 bodies as GitHub words them) and the request-body
 * validation of the stand-in, with the enums type-checked against @octokit/openapi-types.
 */
import type { operations } from '@octokit/openapi-types'
import type { Obj } from './types.js'

type Json<O extends keyof operations> = operations[O] extends {
  requestBody: { content: { 'application/json': infer B } }
}
  ? B
  : never
/** An array holding exactly the members of union T (compile error when one is missing or extra). */
function allOf<T extends string>() {
  return <A extends readonly T[]>(
    a: A & ([Exclude<T, A[number]>] extends [never] ? unknown : never)
  ): readonly T[] => a
}

export const STATUS_STATES = allOf<Json<'repos/create-commit-status'>['state']>()([
  'error',
  'failure',
  'pending',
  'success'
] as const)
const CHECK_CREATE_STATUS = allOf<NonNullable<Json<'checks/create'>['status']>>()([
  'queued',
  'in_progress',
  'completed'
] as const)
// (the update body lists six statuses but intersects them with queued | in_progress | completed)
const CHECK_UPDATE_STATUS = allOf<NonNullable<Json<'checks/update'>['status']>>()([
  'queued',
  'in_progress',
  'completed'
] as const)
const CHECK_CONCLUSIONS = allOf<NonNullable<Json<'checks/create'>['conclusion']>>()([
  'action_required',
  'cancelled',
  'failure',
  'neutral',
  'success',
  'skipped',
  'stale',
  'timed_out'
] as const)
const ANNOTATION_LEVELS = allOf<
  NonNullable<Json<'checks/create'>['output']>['annotations'] extends (infer A)[] | undefined
    ? A extends { annotation_level: infer L extends string }
      ? L
      : never
    : never
>()(['notice', 'warning', 'failure'] as const)
export const DEPLOYMENT_STATES = allOf<Json<'repos/create-deployment-status'>['state']>()([
  'error',
  'failure',
  'inactive',
  'in_progress',
  'queued',
  'pending',
  'success'
] as const)

export const DOCS = 'https://docs.github.com/rest'

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Obj
  ) {
    super(String(body.message))
  }
}

export const invalid = (msg: string): HttpError =>
  new HttpError(422, { message: `Invalid request.\n\n${msg}`, documentation_url: DOCS })
export const validation = (resource: string, field: string, message: string): HttpError =>
  new HttpError(422, {
    message: 'Validation Failed',
    errors: [{ resource, code: 'custom', field, message }],
    documentation_url: DOCS
  })
export const notFound = (): HttpError =>
  new HttpError(404, { message: 'Not Found', documentation_url: DOCS, status: '404' })

export function need(body: Obj, field: string, type: 'string' | 'object' = 'string'): void {
  if (body[field] === undefined || body[field] === null) throw invalid(`"${field}" wasn't supplied.`)
  if (typeof body[field] !== type)
    throw invalid(`For '${field}', ${JSON.stringify(body[field])} is not a ${type}.`)
}
export function optional(body: Obj, field: string, type: 'string' | 'boolean' | 'object' | 'array'): void {
  const v = body[field]
  if (v === undefined || (v === null && type === 'string')) return
  const ok = type === 'array' ? Array.isArray(v) : typeof v === type && v !== null
  if (!ok)
    throw invalid(
      `For '${field}', ${JSON.stringify(v)} is not ${type === 'array' ? 'an array' : `a ${type}`}.`
    )
}
export function oneOf(resource: string, body: Obj, field: string, values: readonly string[]): void {
  const v = body[field]
  if (v === undefined) return
  if (typeof v !== 'string' || !values.includes(v))
    throw validation(resource, field, `${field} is not included in the list`)
}
function isoDate(body: Obj, field: string): void {
  const v = body[field]
  if (v === undefined) return
  if (typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v)) {
    throw invalid(`For '${field}', ${JSON.stringify(v)} is not a date-time (ISO 8601).`)
  }
}

export function validateCheckRun(body: Obj, creating: boolean): void {
  if (creating) {
    need(body, 'name')
    need(body, 'head_sha')
  } else optional(body, 'name', 'string')
  for (const f of ['details_url', 'external_id']) optional(body, f, 'string')
  oneOf('CheckRun', body, 'status', creating ? CHECK_CREATE_STATUS : CHECK_UPDATE_STATUS)
  oneOf('CheckRun', body, 'conclusion', CHECK_CONCLUSIONS)
  isoDate(body, 'started_at')
  isoDate(body, 'completed_at')
  if (body.status === 'completed' && body.conclusion === undefined) {
    throw validation('CheckRun', 'conclusion', 'conclusion is required when status is completed')
  }
  if (body.completed_at !== undefined && body.conclusion === undefined) {
    throw validation('CheckRun', 'conclusion', 'conclusion is required when completed_at is given')
  }
  if (body.output !== undefined) {
    need(body, 'output', 'object')
    const out = body.output as Obj
    if (creating) need(out, 'title')
    else optional(out, 'title', 'string')
    need(out, 'summary')
    optional(out, 'text', 'string')
    if ((out.summary as string).length > 65535)
      throw validation('CheckRun', 'output.summary', 'summary is too long (maximum is 65535 characters)')
    if (typeof out.text === 'string' && out.text.length > 65535)
      throw validation('CheckRun', 'output.text', 'text is too long (maximum is 65535 characters)')
    optional(out, 'annotations', 'array')
    const anns = (out.annotations ?? []) as Obj[]
    if (anns.length > 50)
      throw validation('CheckRun', 'output.annotations', 'annotations are limited to 50 per request')
    for (const a of anns) {
      need(a, 'path')
      need(a, 'message')
      if (typeof a.start_line !== 'number' || typeof a.end_line !== 'number')
        throw invalid(`"start_line" and "end_line" must be numbers.`)
      need(a, 'annotation_level')
      oneOf('CheckRun', a, 'annotation_level', ANNOTATION_LEVELS)
    }
  }
}
