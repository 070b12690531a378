// Exits 0 when the node running it is at least the floor in package.json's engines.node
// (">=major.minor"), else 1. Plain CommonJS so that any old node on PATH can run it.
const floor = require("../package.json")
  .engines.node.replace(/^>=\s*/, "")
  .split(".")
  .map(Number);
const [major, minor] = process.versions.node.split(".").map(Number);
process.exit(major > floor[0] || (major === floor[0] && minor >= (floor[1] ?? 0)) ? 0 : 1);
