/**
 * Redaction of credentials in text that may reach a log, an output, a summary or a GitHub API call.
 * A Redactor knows the secret values (header values, tokens, URL userinfo) and their encoded forms
 * (base64 of the value and of `user:password` for Basic auth, percent-encoded forms) and replaces every
 * occurrence with `***`; URL userinfo is redacted in any URL it sees, known or not.
 * Plain module: callers that use @actions/core mask the same values through `forms()`.
 */

const MASK = '***'

/** Header names whose values are credentials whatever the user says. */
export const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'x-auth-token'
])

export class Redactor {
  private readonly values = new Set<string>()

  /** Registers a secret (ignored when shorter than 3 characters: masking those would garble every log). */
  add(value: string | undefined | null): this {
    if (!value) return this
    for (const form of encodedForms(value)) if (form.length >= 3) this.values.add(form)
    return this
  }

  /** Registers the credential parts of a header value: the whole value, and for `Basic`/`Bearer` the token and decoded user:password. */
  addHeaderValue(value: string): this {
    this.add(value)
    const m = /^\s*(\S+)\s+(.+?)\s*$/.exec(value)
    if (m) {
      this.add(m[2])
      if (/^basic$/i.test(m[1])) {
        const decoded = Buffer.from(m[2], 'base64').toString('utf8')
        if (decoded.includes(':')) {
          this.add(decoded)
          this.add(decoded.slice(decoded.indexOf(':') + 1))
        }
      }
    }
    return this
  }

  /** Registers the userinfo of a URL (user:password, the password, Basic form). */
  addUrl(url: string): this {
    try {
      const u = new URL(url)
      const user = decodeURIComponent(u.username)
      const pass = decodeURIComponent(u.password)
      if (pass) {
        this.add(pass)
        this.add(`${user}:${pass}`)
        if (`${u.username}:${u.password}` !== `${user}:${pass}`) this.add(`${u.username}:${u.password}`)
      } else if (user) this.add(user) // a token given as the user name
    } catch {
      /* not a URL: nothing to register */
    }
    return this
  }

  /** Every registered form, longest first (for core.setSecret). */
  forms(): string[] {
    return [...this.values].sort((a, b) => b.length - a.length)
  }

  redact(text: string): string {
    let out = redactUrlUserinfo(text)
    for (const v of this.forms()) if (out.includes(v)) out = out.split(v).join(MASK)
    return out
  }
}

/** The value and the encoded forms it may travel in: base64 (Basic auth, Kubernetes secrets), percent-encoding. */
function encodedForms(value: string): string[] {
  const forms = new Set([value, value.trim()])
  forms.add(Buffer.from(value).toString('base64'))
  forms.add(Buffer.from(value).toString('base64').replace(/=+$/, ''))
  if (encodeURIComponent(value) !== value) forms.add(encodeURIComponent(value))
  return [...forms].filter(Boolean)
}

/** `scheme://user:pass@host` → `scheme://***@host`, anywhere in the text. */
export function redactUrlUserinfo(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@?#]+@/gi, `$1${MASK}@`)
}

/** A URL without userinfo, for display. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url)
    if (!u.username && !u.password) return url
    u.username = ''
    u.password = ''
    return u.toString()
  } catch {
    return redactUrlUserinfo(url)
  }
}
