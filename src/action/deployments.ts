/**
 * GitHub Deployments for deploy-ssh and rollback: one Deployment per run for `environment` (ref = the
 * commit, payload = release id, version and digests, auto_merge off, no required contexts), then statuses
 * in_progress → success / failure. GitHub itself marks the environment's older deployments `inactive`
 * when a new one reaches success (auto_inactive, the default) for non-production environments; for
 * production environments (and transient ones) it does not, so we mark the deployment we replaced
 * inactive ourselves. An API failure never fails the deploy: it is a warning. @actions/github (octokit) is
 * imported only when a Deployment is recorded.
 */
import * as core from '@actions/core'
import { redacted } from './secrets.js'
import { errorMessage } from '../lib/errors.js'

export interface DeploymentPlan {
  ref: string
  version: string
  releaseId: string
  images: Record<string, string>
  task: 'deploy' | 'deploy:rollback'
  description: string
  /** extra payload fields */
  extra?: Record<string, unknown>
}

export interface DeploymentRecord {
  id?: number
  finish(state: 'success' | 'failure' | 'error', description: string): Promise<void>
}

export interface DeploymentOptions {
  token: string
  environment: string
  environmentUrl?: string
  logUrl?: string
}

const NOOP: DeploymentRecord = { finish: async () => undefined }

/** Creates the Deployment and its in_progress status; returns a handle to finish it. */
export async function startDeployment(
  opts: DeploymentOptions,
  plan: DeploymentPlan
): Promise<DeploymentRecord> {
  if (!opts.environment) return NOOP
  if (!opts.token) {
    core.warning(
      `environment '${opts.environment}' is set but 'github-token' is empty: no GitHub Deployment is recorded.`
    )
    return NOOP
  }
  const github = await import('@actions/github')
  const octokit = github.getOctokit(opts.token, {
    baseUrl: process.env.GITHUB_API_URL || 'https://api.github.com'
  })
  const { owner, repo } = github.context.repo
  // API payload text: every secret of the run redacted (log masking does not reach GitHub's API)
  const short = (s: string): string => redacted(s).slice(0, 140)
  let id: number
  let previous: number | undefined
  let production = false
  try {
    const prior = await octokit.rest.repos.listDeployments({
      owner,
      repo,
      environment: opts.environment,
      per_page: 1
    })
    previous = prior.data[0]?.id
    const res = await octokit.rest.repos.createDeployment({
      owner,
      repo,
      ref: plan.ref,
      environment: opts.environment,
      task: plan.task,
      description: short(plan.description),
      auto_merge: false,
      required_contexts: [],
      payload: { release_id: plan.releaseId, version: plan.version, images: plan.images, ...plan.extra }
    })
    if (!('id' in res.data))
      throw new Error(`GitHub did not create the deployment: ${JSON.stringify(res.data).slice(0, 200)}`)
    id = res.data.id
    production = !!res.data.production_environment
    await octokit.rest.repos.createDeploymentStatus({
      owner,
      repo,
      deployment_id: id,
      state: 'in_progress',
      log_url: opts.logUrl,
      environment_url: opts.environmentUrl || undefined,
      description: short(plan.description)
    })
    core.info(`GitHub Deployment ${id} for environment '${opts.environment}': in_progress`)
  } catch (e) {
    core.warning(
      `Could not record a GitHub Deployment for '${opts.environment}' (${errorMessage(e).split('\n')[0]}); the deploy goes on. Give the token 'deployments: write'.`
    )
    return NOOP
  }
  return {
    id,
    async finish(state, description) {
      try {
        await octokit.rest.repos.createDeploymentStatus({
          owner,
          repo,
          deployment_id: id,
          state,
          log_url: opts.logUrl,
          environment_url: opts.environmentUrl || undefined,
          description: short(description),
          auto_inactive: true
        })
        if (state === 'success' && production && previous && previous !== id) {
          // GitHub leaves production deployments active; the one we replaced is no longer live
          await octokit.rest.repos.createDeploymentStatus({
            owner,
            repo,
            deployment_id: previous,
            state: 'inactive',
            description: 'replaced'
          })
        }
        core.info(`GitHub Deployment ${id}: ${state}`)
      } catch (e) {
        core.warning(
          `Could not update GitHub Deployment ${id} to ${state}: ${errorMessage(e).split('\n')[0]}`
        )
      }
    }
  }
}
