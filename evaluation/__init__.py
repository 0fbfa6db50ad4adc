"""Retrieval quality: the evaluation sets, the metrics, comparisons of models and the result
pages. Performance (time, memory) is measured by `bench`."""
