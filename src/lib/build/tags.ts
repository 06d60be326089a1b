/**
 * Which commit an image is tagged with, and the tags it gets: the full 40-hex commit SHA (immutable), the
 * moving stage tag, and any extra tags, each validated against the OCI tag grammar.
 */
import { pullRequestHead } from '../github/run.js'
import { UserError } from '../errors.js'
import { FULL_SHA, isTag } from '../registry/reference.js'

/** Throws a UserError naming the input unless `tag` is a valid tag (`[\w][\w.-]{0,127}`), saying why. */
export function validateTag(input: string, tag: string): string {
  if (isTag(tag)) return tag
  const why =
    tag.length > 128
      ? `is ${tag.length} characters long (at most 128)`
      : /^[.-]/.test(tag)
        ? 'starts with . or -'
        : `contains '${[...tag].find(c => !/[A-Za-z0-9_.-]/.test(c)) ?? ''}'`
  throw new UserError(
    `Input '${input}': '${tag}' is not a valid image tag: it ${why}. Tags are letters, digits, _, . and - (first one a letter, digit or _), at most 128 characters.`
  )
}

export interface CommitSource {
  /** the `sha` input ('' when not given) */
  input: string
  /** GITHUB_EVENT_NAME */
  eventName?: string
  /** GITHUB_EVENT_PATH (the event payload) */
  eventPath?: string
  /** GITHUB_SHA */
  githubSha?: string
}

export { pullRequestHead }

/**
 * The commit the image is tagged with: the `sha` input when given, else the pull request head on
 * pull_request events (GITHUB_SHA is then a merge commit nobody pushed), else GITHUB_SHA.
 */
export function commitSha(src: CommitSource): { sha: string; from: string } {
  const candidates: [string | undefined, string][] = [
    [src.input.trim() || undefined, "input 'sha'"],
    [pullRequestHead(src.eventName, src.eventPath), 'the pull request head (pull_request.head.sha)'],
    [src.githubSha, 'GITHUB_SHA']
  ]
  for (const [value, from] of candidates) {
    if (!value) continue
    const sha = value.toLowerCase()
    if (!FULL_SHA.test(sha)) {
      throw new UserError(
        `The commit from ${from} is '${value}', not a full 40-hex commit SHA. Pass the full SHA, e.g. 'sha: \${{ github.sha }}'.`
      )
    }
    return { sha, from }
  }
  throw new UserError("No commit SHA: GITHUB_SHA is not set. Pass 'sha: <full 40-hex commit SHA>'.")
}

export interface TagPlan {
  shaTag: string
  stageTag?: string
  /** every tag, SHA tag first, without duplicates */
  all: string[]
}

/**
 * An entry of `tags`: a tag, or a full reference `<image>:<tag>` of this very image (as
 * docker/metadata-action writes them), reduced to its tag. A reference to another image is refused.
 */
function tagOf(entry: string, image?: string): string {
  const colon = entry.lastIndexOf(':')
  if (image && entry.includes('/') && colon > entry.lastIndexOf('/')) {
    const repo = entry.slice(0, colon)
    if (repo.toLowerCase() === image.toLowerCase()) return entry.slice(colon + 1)
    throw new UserError(
      `Input 'tags': '${entry}' is a reference to ${repo}, not to ${image}. List tag names (e.g. 'v1.2.3'); to push to another repository set 'image'.`
    )
  }
  return entry
}

export function planTags(sha: string, stageTag: string, extra: string[], image?: string): TagPlan {
  const stage = stageTag.trim()
  if (stage) validateTag('stage-tag', stage)
  const tags = extra.map(t => validateTag('tags', tagOf(t, image)))
  const all = [...new Set([sha, ...(stage ? [stage] : []), ...tags])]
  return { shaTag: sha, stageTag: stage || undefined, all }
}
