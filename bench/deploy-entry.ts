// What bench/deploy.mjs needs from src/, bundled by esbuild on the fly.
export { deploy, rollback } from '../src/lib/deploy/index.js'
export { connectSsh } from '../src/lib/ssh/client.js'
export { projectName, composeArgv } from '../src/lib/compose/layout.js'
export { RegistryClient } from '../src/lib/registry/index.js'
export { buildAppImage, removeImages } from '../src/testkit/images.js'
export { uniqueName } from '../src/testkit/net.js'
export { startRegistry } from '../src/testkit/registry.js'
export { startSshd } from '../src/testkit/sshd.js'
