/** shipline's own OCI registry client: references, the client, errors, media types, promote. */
export * from './reference.js'
export * from './errors.js'
export * from './media.js'
export * from './client.js'
export * from './promote.js'
export * from './merge.js'
export * from './referrers.js'
