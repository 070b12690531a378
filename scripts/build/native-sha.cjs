// Bundles only (scripts/build/build.ts puts it in place of sha.js): sha.js's call form,
// `shajs(algorithm)` giving a hash with update/digest, on node:crypto.
"use strict";
const { createHash } = require("node:crypto");

module.exports = (algorithm) => createHash(algorithm);
