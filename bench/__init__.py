"""tagd's benchmarks: `python -m bench` (or `bench/run.py`) measures the reader against its performance goals
and writes docs/performance.md. Speed lives here, never in timed test assertions."""
