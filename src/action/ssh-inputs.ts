/**
 * The SSH inputs common to deploy-ssh, rollback and ship, read into typed options and checked before
 * anything connects: host lines, credentials (masked), host-key policy. The loud warning for
 * `insecure-accept-any-host-key` is logged here with core.warning.
 */
import * as core from '@actions/core'
import { UserError } from '../lib/errors.js'
import { preflight, type SshOptions } from '../lib/ssh/client.js'
import { checkUser, parseTarget, parseTargets, type SshTarget } from '../lib/ssh/hosts.js'
import * as inputs from './inputs.js'

export interface SshInputs {
  targets: SshTarget[]
  options: SshOptions
  warnings: string[]
}

export function readSshInputs(): SshInputs {
  const user = checkUser(inputs.str('user', 'root'), 'user')
  const port = inputs.int('port', 22, { min: 1, max: 65535 })
  const hostLines = inputs.list('hosts')
  if (hostLines.length === 0) {
    throw new UserError(
      "Input 'hosts' is required: one host per line as [user@]host[:port], e.g. 'deploy@app1.example.com'."
    )
  }
  const targets = parseTargets(hostLines, { user, port }, 'hosts')
  const jump = inputs.str('proxy-jump')
  const options: SshOptions = {
    privateKey: inputs.secret('ssh-key') || undefined,
    passphrase: inputs.secret('ssh-key-passphrase') || undefined,
    password: inputs.secret('ssh-password') || undefined,
    knownHosts: inputs.str('known-hosts') || undefined,
    fingerprints: inputs.list('host-fingerprint', { commas: false }),
    insecureAcceptAnyHostKey: inputs.bool('insecure-accept-any-host-key', false),
    proxyJump: jump ? parseTarget(jump, { user, port: 22 }, 'proxy-jump') : undefined
  }
  const { checker, warnings } = preflight(options, targets)
  options.checker = checker
  for (const w of warnings) core.warning(w)
  return { targets, options, warnings }
}
