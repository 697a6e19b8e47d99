"""`landscape-graphql export` and `verify`: signed, streamed, resumable exports.

One concept per module: `canonical` (RFC 8785 records and the RFC 6962 Merkle tree),
`manifest` (the manifest and its signatures), `sources` (the paginator: in-process or HTTP, a
run or one connection of a query), `formats` (jsonl, json, csv, gzip), `writer` (the .part
file, checkpoint and resume), `runs` (the run preset), `verify`, `elspeth` (ELSPETH 0.4.1's
signed export format) and `command` (the two subcommands).
"""

FORMAT_ID = "landscape-graphql-export/1"
CHUNK_RECORDS = 1 << 16
