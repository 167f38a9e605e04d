"""Catalog ingest: parse real movie-data files (TMDB, The Movies Dataset, MovieLens, JSON Lines) into records."""

from .formats import FORMATS, detect_format, read_records

__all__ = ["FORMATS", "detect_format", "read_records"]
