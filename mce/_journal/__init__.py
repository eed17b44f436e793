"""The journal's implementation; its public surface is `mce.journal`.

One job per module: `errors` (what goes wrong), `records` (the typed
header and record), `lines` (a record's canonical line and its checksum),
`conversations` (requests stored as a reference to an earlier one),
`loading` (a file's bytes to checked records), `memory` (the in-memory
journal, and the interface every journal implements) and `file` (the
JSON Lines file with its lock, repair and fsynced appends).
"""
