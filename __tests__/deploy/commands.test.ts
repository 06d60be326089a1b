/** The release command's and hooks' input parsing and argv, as plain units (no host). */
import { describe, expect, it } from '@jest/globals'
import {
  checkReleaseCommand,
  composeOutput,
  parseHostCommand,
  parseReleaseCommand,
  splitWords,
  tailLines
} from '../../src/lib/deploy/commands.js'
import { migratedPast } from '../../src/lib/deploy/rollback.js'
import { ComposeRuntime } from '../../src/lib/runtime/compose.js'
import type { HostState } from '../../src/lib/release/store.js'
import { ReleaseStore } from '../../src/lib/release/store.js'
import type { Remote } from '../../src/lib/ssh/remote.js'

describe('splitWords', () => {
  it('splits like a shell, without expansions', () => {
    expect(splitWords('alembic upgrade head', 'x')).toEqual(['alembic', 'upgrade', 'head'])
    expect(splitWords(`sh -c 'a && b "$X"'`, 'x')).toEqual(['sh', '-c', 'a && b "$X"'])
    expect(splitWords('echo "a \\"b\\" $HOME"  c\\ d', 'x')).toEqual(['echo', 'a "b" $HOME', 'c d'])
    expect(splitWords(`'' x`, 'x')).toEqual(['', 'x'])
    expect(splitWords('   ', 'x')).toEqual([])
  })
  it('refuses unclosed quotes, naming the input', () => {
    expect(() => splitWords("sh -c 'x", 'release-command')).toThrow(
      /Input 'release-command' has an unclosed single/
    )
    expect(() => splitWords('echo "x', 'release-command')).toThrow(/unclosed double quote/)
  })
})

describe('release-command input', () => {
  it('reads service=command', () => {
    expect(parseReleaseCommand('api=alembic upgrade head', 900)).toEqual({
      service: 'api',
      argv: ['alembic', 'upgrade', 'head'],
      text: 'alembic upgrade head',
      timeoutSec: 900
    })
    expect(parseReleaseCommand('  ', 900)).toBeUndefined()
    // the first '=' separates: the command may hold more
    expect(parseReleaseCommand('web = env A=1 migrate', 5)?.argv).toEqual(['env', 'A=1', 'migrate'])
  })
  it('refuses what it cannot run, with the fix', () => {
    expect(() => parseReleaseCommand('alembic upgrade head', 1)).toThrow(/must be service=command, e\.g\./)
    expect(() => parseReleaseCommand('=x', 1)).toThrow(/must be service=command/)
    expect(() => parseReleaseCommand('api=', 1)).toThrow(/no command/)
    expect(() => parseReleaseCommand('api=a\nb', 1)).toThrow(/is one line/)
    expect(() => parseReleaseCommand('Bad Name=x', 1)).toThrow(/release-command/)
    expect(() => checkReleaseCommand(parseReleaseCommand('api=x', 1), ['web', 'db'])).toThrow(
      /names service 'api', which the compose files do not define\. Known: web, db/
    )
    expect(() => checkReleaseCommand(parseReleaseCommand('web=x', 1), ['web'])).not.toThrow()
  })
  it('host commands are shell text as given', () => {
    expect(parseHostCommand(' pg_dump app > "$SHIPLINE_BACKUP_DIR/db.sql" ', 60)).toEqual({
      text: 'pg_dump app > "$SHIPLINE_BACKUP_DIR/db.sql"',
      timeoutSec: 60
    })
    expect(parseHostCommand('', 60)).toBeUndefined()
  })
  it("leaves Compose's own lines out of a one-off container's output", () => {
    const v1 =
      'Creating network "p_default" with the default driver\nCreating p_a_run ... \r\nCreating p_a_run ... done\r\nhi\nerr\n3\n'
    expect(composeOutput(v1, 3)).toBe('hi\nerr')
    expect(composeOutput('3\n', 0)).toBe('3')
  })
  it('keeps the last non-empty lines of the output', () => {
    expect(tailLines('a\n\nb\r\nc\n', 2)).toBe('b\nc')
  })
})

describe('the one-off container', () => {
  const remote = { label: 'h', exec: async () => ({ code: 0, stdout: '', stderr: '' }) } as unknown as Remote
  const store = new ReleaseStore(remote, { path: '/opt/app', log: { info: () => {}, warning: () => {} } })
  const meta = {
    id: '20261202T000000000Z-v2',
    version: 'v2',
    time: '',
    files: ['docker-compose.yml', 'shipline.override.yml'],
    env: true,
    images: {},
    services: ['web', 'db'],
    updated: ['web']
  }
  it('runs the new release files, --rm, no tty, named, and without deps when something is live', () => {
    const rt = new ComposeRuntime(store)
    const argv = rt.oneOffArgv(meta, 'web', ['alembic', 'upgrade', 'head'], 'app-release-abc', false)
    const dir = '/opt/app/.shipline/releases/20261202T000000000Z-v2'
    expect(argv).toEqual([
      'docker-compose',
      '--project-name',
      store.layout.project,
      '--project-directory',
      dir,
      '--file',
      `${dir}/docker-compose.yml`,
      '--file',
      `${dir}/shipline.override.yml`,
      '--env-file',
      `${dir}/.env`,
      'run',
      '--rm',
      '-T',
      '--name',
      'app-release-abc',
      '--no-deps',
      'web',
      'alembic',
      'upgrade',
      'head'
    ])
    expect(rt.oneOffArgv(meta, 'web', ['x'], 'n', true)).not.toContain('--no-deps')
  })
})

describe('rollback past a migration', () => {
  it('names the deploys after the target whose release command ran', () => {
    const entry = (release: string, exit: number | null) => ({
      time: '',
      event: 'deploy' as const,
      release,
      version: release.slice(-2),
      releaseCommand: { command: 'migrate', exit, durationMs: 1, tail: '' }
    })
    const state = {
      current: 'r3-v3',
      ledger: [
        entry('r1-v1', 0),
        entry('r2-v2', 0),
        entry('r3-v3', 1),
        { time: '', event: 'deploy', release: 'r3-v3' }
      ]
    } as unknown as HostState
    expect(migratedPast(state, 'r1-v1').map(e => e.release)).toEqual(['r2-v2'])
    expect(migratedPast(state, 'r2-v2')).toEqual([])
  })
})
