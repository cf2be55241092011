#!/usr/bin/env node
// Makes the npm `solc` (solc-js) answer like a native solc for the two calls py-solc-x's
// compile_standard makes: `--version` and `--standard-json` (input on stdin, output on stdout).
// Sources arrive with their content inlined by smartsla.chain.build, so no import callback is needed;
// that keeps native solc and solc-js on exactly the same input.
'use strict';
const path = require('path');

function loadSolc() {
  const root = process.env.SMARTSLA_NODE_MODULES || path.join(__dirname, '..', '..', 'node_modules');
  try {
    return require(path.join(root, 'solc'));
  } catch (err) {
    process.stderr.write(`solc-js not found under ${root}: run \`npm ci\` in the project root\n`);
    process.exit(2);
  }
}

const args = process.argv.slice(2);
if (args.includes('--version')) {
  const solc = loadSolc();
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes('--standard-json')) {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    const solc = loadSolc();
    process.stdout.write(solc.compile(Buffer.concat(chunks).toString('utf8')));
  });
} else {
  process.stderr.write('unrecognised option: this adapter only answers --version and --standard-json\n');
  process.exit(1);
}
