"""Evolution strategies and the parallel machinery they run on; knows nothing of world models."""
