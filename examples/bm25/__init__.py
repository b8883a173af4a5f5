"""A text-search model none of us wrote: BM25 (rank-bm25) behind a cvagents adapter. See README.md."""
