#!/usr/bin/env node
// The npm `solc` (solc-js) as the "solc" that brownie finds through py-solc-x, so `brownie compile` runs
// offline: `make brownie-check` links it as $SOLCX_BINARY_PATH/solc-v<version>. It answers the calls brownie
// makes, `--version` and `--standard-json` (input on stdin, output on stdout). Unlike
// smartsla/chain/solcjs-adapter.cjs (whose input arrives with every source inlined), brownie sends only the project's
// own sources and lets solc read imports from disk, so this one has an import callback: a remapped import such
// as node_modules/@openzeppelin/... is read relative to the working folder (the project root), and only from
// inside it or a folder given with --allow-paths / --base-path.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);

function loadSolc() {
  const modules = process.env.SMARTSLA_NODE_MODULES || path.join(root, 'node_modules');
  try {
    return require(path.join(modules, 'solc'));
  } catch (err) {
    process.stderr.write(`solc-js not found under ${modules}: run \`npm ci\` in the project root\n`);
    process.exit(2);
  }
}

function optionValues(name) {
  const values = [];
  args.forEach((arg, i) => {
    if (arg === name && i + 1 < args.length) values.push(...args[i + 1].split(','));
    else if (arg.startsWith(name + '=')) values.push(...arg.slice(name.length + 1).split(','));
  });
  return values.filter(Boolean).map((p) => path.resolve(p));
}

const allowed = [process.cwd(), ...optionValues('--allow-paths'), ...optionValues('--base-path')];

function findImport(unit) {
  const file = path.resolve(process.cwd(), unit);
  if (!allowed.some((dir) => file === dir || file.startsWith(dir + path.sep))) {
    return { error: `${unit}: outside the allowed paths (${allowed.join(', ')})` };
  }
  try {
    return { contents: fs.readFileSync(file, 'utf8') };
  } catch (err) {
    return { error: `${unit}: ${err.code || err.message}` };
  }
}

if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${loadSolc().version()}\n`);
} else if (args.includes('--standard-json')) {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    const solc = loadSolc();
    process.stdout.write(solc.compile(Buffer.concat(chunks).toString('utf8'), { import: findImport }));
  });
} else {
  process.stderr.write('unrecognised option: this wrapper only answers --version and --standard-json\n');
  process.exit(1);
}
