/** The GitHub REST stand-in answers Octokit (through @actions/github's getOctokit) like GitHub does. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { getOctokit } from '@actions/github'
import { start, type GitHubApi } from '../../src/testkit/github-api.js'

const TOKEN = 'ghs_standin_rw'
const RO = 'ghs_standin_ro'
const SHA = 'b'.repeat(40)
let gh: GitHubApi

beforeAll(async () => {
  gh = await start({ token: TOKEN, readOnlyTokens: [RO] })
})
afterAll(async () => gh.stop())

const kit = (token = TOKEN) => getOctokit(token, { baseUrl: gh.url, request: { retries: 0 } })
const fail = async (p: Promise<unknown>): Promise<{ status: number; message: string }> => {
  try {
    await p
  } catch (e) {
    const err = e as { status: number; message: string }
    return { status: err.status, message: err.message }
  }
  throw new Error('expected a failure')
}

describe('GitHub REST stand-in', () => {
  it('creates commit statuses and validates state', async () => {
    const r = await kit().rest.repos.createCommitStatus({
      owner: 'o',
      repo: 'r',
      sha: SHA,
      state: 'success',
      context: 'smoke'
    })
    expect(r.status).toBe(201)
    expect(r.data).toMatchObject({ state: 'success', context: 'smoke' })
    expect(gh.statuses.at(-1)).toMatchObject({ repo: 'o/r', sha: SHA })
    const bad = await fail(kit().request(`POST /repos/o/r/statuses/${SHA}`, { state: 'ok' }))
    expect(bad.status).toBe(422)
    const missing = await fail(kit().request(`POST /repos/o/r/statuses/${SHA}`, {}))
    expect(missing).toMatchObject({ status: 422 })
    expect(missing.message).toContain('"state" wasn\'t supplied')
  })

  it('answers 401 to a wrong token and 403 to a read-only token on writes', async () => {
    expect((await fail(kit('nope').rest.repos.listDeployments({ owner: 'o', repo: 'r' }))).status).toBe(401)
    expect((await kit(RO).rest.repos.listDeployments({ owner: 'o', repo: 'r' })).status).toBe(200)
    const ro = await fail(
      kit(RO).rest.repos.createCommitStatus({ owner: 'o', repo: 'r', sha: SHA, state: 'success' })
    )
    expect(ro.status).toBe(403)
    expect(ro.message).toContain('Resource not accessible by integration')
  })

  it('creates and completes check runs', async () => {
    const c = await kit().rest.checks.create({
      owner: 'o',
      repo: 'r',
      name: 'smoke',
      head_sha: SHA,
      status: 'in_progress'
    })
    expect(c.status).toBe(201)
    expect(c.data.status).toBe('in_progress')
    const u = await kit().rest.checks.update({
      owner: 'o',
      repo: 'r',
      check_run_id: c.data.id,
      conclusion: 'success',
      output: { title: 't', summary: 's' }
    })
    expect(u.data).toMatchObject({
      status: 'completed',
      conclusion: 'success',
      output: { title: 't', summary: 's' }
    })
    const bad = await fail(
      kit().request('POST /repos/{owner}/{repo}/check-runs', {
        owner: 'o',
        repo: 'r',
        name: 'x',
        head_sha: SHA,
        status: 'completed'
      })
    )
    expect(bad.status).toBe(422)
  })

  it('records deployments and their statuses, newest first, with auto_inactive', async () => {
    const k = kit()
    const d1 = await k.rest.repos.createDeployment({
      owner: 'o',
      repo: 'd',
      ref: SHA,
      environment: 'stage',
      required_contexts: []
    })
    expect(d1.status).toBe(201)
    const id1 = (d1.data as { id: number }).id
    await k.rest.repos.createDeploymentStatus({ owner: 'o', repo: 'd', deployment_id: id1, state: 'success' })
    const d2 = await k.rest.repos.createDeployment({
      owner: 'o',
      repo: 'd',
      ref: 'main',
      environment: 'stage',
      required_contexts: []
    })
    const id2 = (d2.data as { id: number }).id
    await k.rest.repos.createDeploymentStatus({ owner: 'o', repo: 'd', deployment_id: id2, state: 'success' })
    const list = await k.rest.repos.listDeployments({ owner: 'o', repo: 'd', environment: 'stage' })
    expect(list.data.map(d => d.id)).toEqual([id2, id1])
    const s1 = await k.rest.repos.listDeploymentStatuses({ owner: 'o', repo: 'd', deployment_id: id1 })
    expect(s1.data.map(s => s.state)).toEqual(['inactive', 'success'])
    expect((await fail(k.rest.repos.getDeployment({ owner: 'o', repo: 'd', deployment_id: 1 }))).status).toBe(
      404
    )
  })

  it('lists statuses and the combined status; a failing context blocks a deployment with 409 unless skipped', async () => {
    const k = kit()
    const sha = 'e'.repeat(40)
    await k.rest.repos.createCommitStatus({ owner: 'o', repo: 's', sha, state: 'success', context: 'ci' })
    await k.rest.repos.createCommitStatus({ owner: 'o', repo: 's', sha, state: 'failure', context: 'smoke' })
    const list = await k.rest.repos.listCommitStatusesForRef({ owner: 'o', repo: 's', ref: sha })
    expect(list.data.map(x => x.context)).toEqual(['smoke', 'ci'])
    const combined = await k.rest.repos.getCombinedStatusForRef({ owner: 'o', repo: 's', ref: sha })
    expect(combined.data).toMatchObject({ state: 'failure', total_count: 2 })
    const blocked = await fail(
      k.rest.repos.createDeployment({ owner: 'o', repo: 's', ref: sha, environment: 'prod' })
    )
    expect(blocked.status).toBe(409)
    expect(blocked.message).toContain('Commit status checks failed')
    const onlyCi = await k.rest.repos.createDeployment({
      owner: 'o',
      repo: 's',
      ref: sha,
      required_contexts: ['ci']
    })
    expect(onlyCi.status).toBe(201)
    const none = await k.rest.repos.createDeployment({
      owner: 'o',
      repo: 's',
      ref: sha,
      required_contexts: []
    })
    expect(none.status).toBe(201)
  })
})
