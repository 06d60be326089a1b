/**
 * build-push's own build provenance (`attest: true`): an in-toto v1 Statement with a SLSA v1 provenance
 * predicate about the pushed image digest, made from facts the step knows (inputs, the runner's
 * environment, the times), pushed as an OCI 1.1 referrer so the image and its index stay untouched.
 * Build arguments appear by name only: no value of a build argument, a secret or a label is in it.
 */
import { runUrl } from '../github/run.js'

export const IN_TOTO_STATEMENT = 'https://in-toto.io/Statement/v1'
export const SLSA_PROVENANCE = 'https://slsa.dev/provenance/v1'
/** the buildType: what externalParameters mean (documented in build-push/README.md, "Attestations") */
export const BUILD_TYPE = 'urn:shipline:build-push:v1'

type Env = Record<string, string | undefined>

export interface ProvenanceFacts {
  /** the image repository as pushed (`ghcr.io/o/app`) */
  image: string
  /** the registry-read digest of the pushed image (`sha256:…`) */
  digest: string
  /** the commit the image is tagged with */
  sha: string
  /** `context` and `file` as given */
  context: string
  file: string
  target?: string
  platforms: string[]
  /** names of the build arguments (their values are never recorded) */
  buildArgNames: string[]
  /** buildx with its driver, or the classic builder (BuildPushResult.builder) */
  builder: string
  pushByDigest: boolean
  startedOn: Date
  finishedOn: Date
  env: Env
}

export interface ProvenanceStatement {
  _type: typeof IN_TOTO_STATEMENT
  subject: { name: string; digest: { sha256: string } }[]
  predicateType: typeof SLSA_PROVENANCE
  predicate: {
    buildDefinition: {
      buildType: string
      externalParameters: Record<string, unknown>
      internalParameters: Record<string, unknown>
      resolvedDependencies: { uri: string; digest: { gitCommit: string } }[]
    }
    runDetails: {
      builder: { id: string }
      metadata: { invocationId?: string; startedOn: string; finishedOn: string }
    }
  }
}

/** The workflow file that ran: `{ ref, repository, path }` from GITHUB_WORKFLOW_REF (else GITHUB_REF). */
function workflowOf(env: Env, server: string): { ref?: string; repository?: string; path?: string } {
  const repo = env.GITHUB_REPOSITORY
  const wref = env.GITHUB_WORKFLOW_REF ?? ''
  const at = wref.lastIndexOf('@')
  const file = at > 0 ? wref.slice(0, at) : wref
  return {
    ref: (at > 0 ? wref.slice(at + 1) : '') || env.GITHUB_REF || undefined,
    repository: repo ? `${server}/${repo}` : undefined,
    path: repo && file.startsWith(`${repo}/`) ? file.slice(repo.length + 1) : file || undefined
  }
}

/** Drops undefined and empty values (strings, lists, objects), so the statement only says what is known. */
const known = (o: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(o).filter(
      ([, v]) => v !== undefined && v !== '' && !(typeof v === 'object' && v && !Object.keys(v).length)
    )
  )

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z')

export function provenanceStatement(f: ProvenanceFacts): ProvenanceStatement {
  const hex = /^sha256:([0-9a-f]{64})$/.exec(f.digest)?.[1]
  if (!hex) throw new Error(`provenance: '${f.digest}' is not a sha256 digest`)
  const env = f.env
  const server = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '')
  const workflow = workflowOf(env, server)
  const run = runUrl(env)
  const attempt = env.GITHUB_RUN_ATTEMPT
  return {
    _type: IN_TOTO_STATEMENT,
    subject: [{ name: f.image, digest: { sha256: hex } }],
    predicateType: SLSA_PROVENANCE,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: known({
          workflow: known(workflow),
          sha: f.sha,
          context: f.context,
          file: f.file,
          target: f.target,
          platforms: f.platforms,
          buildArgs: [...f.buildArgNames].sort(),
          pushByDigest: f.pushByDigest || undefined
        }),
        internalParameters: known({
          builder: f.builder,
          github: known({ event_name: env.GITHUB_EVENT_NAME, runner_environment: env.RUNNER_ENVIRONMENT })
        }),
        resolvedDependencies:
          workflow.repository && f.sha
            ? [
                {
                  uri: `git+${workflow.repository}${workflow.ref ? `@${workflow.ref}` : ''}`,
                  digest: { gitCommit: f.sha }
                }
              ]
            : []
      },
      runDetails: {
        builder: { id: run ?? `${BUILD_TYPE}:outside-github-actions` },
        metadata: {
          ...(run ? { invocationId: attempt ? `${run}/attempts/${attempt}` : run } : {}),
          startedOn: iso(f.startedOn),
          finishedOn: iso(f.finishedOn)
        }
      }
    }
  }
}
