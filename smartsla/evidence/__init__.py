"""Evidence bundles: the samples behind a signed report, Merkle-rooted so any hour can be proved. Columns, the one
Merkle tree, the two bundle formats (v1 text, v2 binary) with the same function names, and the bundle on disk
(version dispatch, atomic install, load, verify)."""
