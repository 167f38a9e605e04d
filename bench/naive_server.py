"""The in-run anchor: what a user writes in 30 lines (FastAPI + sentence-transformers + faiss HNSW).

One torch thread, batch of one, no cache, no auth. `python bench/naive_server.py CATALOG.csv PORT`.
"""

import csv
import sys

import faiss
import torch
import uvicorn
from fastapi import FastAPI
from sentence_transformers import SentenceTransformer

from metamedia.embed.model import packaged_model_path

csv.field_size_limit(10**8)
with open(sys.argv[1], newline="", encoding="utf-8") as fh:
    rows = [(r["title"], f"{r['title']}. {r['overview']}") for r in csv.DictReader(fh)]
model = SentenceTransformer(str(packaged_model_path()), device="cpu")
vectors = model.encode([text for _, text in rows], batch_size=64, normalize_embeddings=True)
index = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
index.hnsw.efConstruction, index.hnsw.efSearch = 200, 64
index.add(vectors)
torch.set_num_threads(1)
faiss.omp_set_num_threads(1)
app = FastAPI()


@app.get("/search")
def search(q: str, k: int = 10) -> dict:
    scores, ids = index.search(model.encode([q], normalize_embeddings=True), k)
    return {"results": [{"title": rows[i][0], "score": float(s)} for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]}


@app.get("/ready")
def ready() -> dict:
    return {"ok": True}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
