import * as core from '@actions/core'
import { parseBoolean, parseInteger, parseList } from '../lib/parse.js'
import { secrets } from './secrets.js'

/** Typed readers over core.getInput: the only place actions read their inputs. */

export function str(name: string, fallback = ''): string {
  const v = core.getInput(name)
  return v === '' ? fallback : v
}

/** A secret input: masked (and its lines) before anything can log it. */
export function secret(name: string, fallback = ''): string {
  const v = core.getInput(name, { trimWhitespace: false })
  const value = v.trim() === '' ? fallback : v
  maskSecret(value)
  return value
}

export function maskSecret(value: string): void {
  if (!value) return
  secrets.add(value)
  for (const line of value.split(/\r?\n/)) if (line.trim().length >= 4) secrets.add(line.trim())
  core.setSecret(value)
  const trimmed = value.trim()
  if (trimmed !== value && trimmed) core.setSecret(trimmed)
  for (const line of value.split(/\r?\n/)) if (line.trim().length >= 4) core.setSecret(line.trim())
  core.setSecret(Buffer.from(value).toString('base64'))
}

export function bool(name: string, fallback: boolean): boolean {
  return parseBoolean(name, core.getInput(name), fallback)
}

export function int(name: string, fallback: number, range?: { min?: number; max?: number }): number {
  return parseInteger(name, core.getInput(name), fallback, range)
}

export function list(name: string, opts?: { commas?: boolean }): string[] {
  return parseList(core.getInput(name), opts)
}
