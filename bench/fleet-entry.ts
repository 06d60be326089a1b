// What bench/fleet.mjs needs from src/ and the fleet test's sandbox hosts, bundled by esbuild on the fly.
export { deploy } from '../src/lib/deploy/index.js'
export { buildAppImage, removeImages } from '../src/testkit/images.js'
export { uniqueName } from '../src/testkit/net.js'
export { startRegistry } from '../src/testkit/registry.js'
export { FLEET_COMPOSE, startFleet } from '../__tests__/fleet/fleet-hosts.js'
