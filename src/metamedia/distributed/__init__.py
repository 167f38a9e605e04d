"""metamedia past one machine, on Ray Serve: index shards with replicas over PostgreSQL.

- `sharding`: which shard holds an item (crc32 of the id mod S), layouts, merging shard answers.
- `shard`: one shard replica (faiss copy of its shard, following the pgvector change log); no Ray.
- `media`: the media collection as the ingress sees it (writes to PostgreSQL, searches scattered).
- `deployments`, `ingress`: the Serve deployments (IndexShard, QueryEmbedder, Ingress).
- `control`, `run`: deploy, scale R, re-shard S; `metamedia serve --ray` and `metamedia cluster`.
"""
