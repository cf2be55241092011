"""The terms file: strict YAML, the JSON schema and its messages, the typed model, `extends` (terms in levels),
and parsing the document into the model."""
